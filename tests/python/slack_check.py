"""Slack's own SDK (slack_sdk, pinned in .ci/run) as the judge of what the notify tests send and
receive:

  slack_check.py sign SECRET TIMESTAMP   < body   -> {"signature": "v0=..."}
      signs a slash-command request as Slack does (SignatureVerifier.generate_signature), and
      checks that SignatureVerifier accepts it back;
  slack_check.py messages                < bodies -> {"checked": N, "blocks": M}
      every chat.postMessage body (a JSON list of them) must parse with the Block Kit models
      (Block.parse: a known block type; to_dict(): the models' validation, e.g. a header's 150
      characters) and survive the round trip unchanged (no field the models do not know).

Exits 1 with the reasons on stderr when something does not pass. A missing slack_sdk is an
ImportError: the calling test fails and says to install it.
"""

import json
import sys
import time

from slack_sdk.models.blocks import Block
from slack_sdk.signature import SignatureVerifier


def sign(secret: str, timestamp: str) -> None:
    body = sys.stdin.buffer.read().decode("utf-8")
    verifier = SignatureVerifier(signing_secret=secret)
    signature = verifier.generate_signature(timestamp=timestamp, body=body)
    headers = {"x-slack-request-timestamp": timestamp, "x-slack-signature": signature}
    # A fresh timestamp must verify; a stale one is for the test to send and see refused.
    if abs(time.time() - int(timestamp)) <= 60 * 5:
        assert verifier.is_valid_request(body, headers), "SignatureVerifier refused its own signature"
    print(json.dumps({"signature": signature}))


def messages() -> None:
    bodies = json.load(sys.stdin)
    problems = []
    n_blocks = 0
    for i, body in enumerate(bodies):
        if not isinstance(body.get("text"), str) or not body["text"]:
            problems.append(f"message {i}: no fallback text")
        for j, raw in enumerate(body.get("blocks") or []):
            n_blocks += 1
            block = Block.parse(raw)
            if block is None:
                problems.append(f"message {i} block {j}: unknown block type {raw.get('type')!r}")
                continue
            try:
                back = block.to_dict()
            except Exception as e:  # the models' validation errors
                problems.append(f"message {i} block {j}: {type(e).__name__}: {e}")
                continue
            if back != raw:
                problems.append(f"message {i} block {j}: changed by the models: {raw} -> {back}")
    if problems:
        print("\n".join(problems), file=sys.stderr)
        sys.exit(1)
    print(json.dumps({"checked": len(bodies), "blocks": n_blocks}))


if __name__ == "__main__":
    if sys.argv[1:2] == ["sign"]:
        sign(sys.argv[2], sys.argv[3])
    elif sys.argv[1:2] == ["messages"]:
        messages()
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
