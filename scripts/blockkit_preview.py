#!/usr/bin/env python3
"""Renders Slack messages (chat.postMessage bodies or conversations.history messages, a JSON
list on stdin) as one HTML page in the manner of Slack's message view: header, mrkdwn text and
fields, context, link buttons. An approximation for the README's picture, not Slack's own
renderer (which is not available offline); every block is first parsed by slack_sdk's Block Kit
models, so what is drawn is what the models accept.

    python3 scripts/blockkit_preview.py < messages.json > preview.html
    chromium --headless --screenshot=docs/chatops-message.png --window-size=760,900 preview.html
"""

import html
import json
import re
import sys

from slack_sdk.models.blocks import Block

EMOJI = {
    ":red_circle:": "🔴", ":large_green_circle:": "🟢", ":x:": "❌", ":rocket:": "🚀",
    ":hourglass:": "⏳", ":rotating_light:": "🚨", ":boom:": "💥", ":package:": "📦",
    ":warning:": "⚠️", ":no_entry:": "⛔", ":white_check_mark:": "✅",
}


def emoji(text: str) -> str:
    for k, v in EMOJI.items():
        text = text.replace(k, v)
    return text


def mrkdwn(text: str) -> str:
    # Slack's escaping first (&amp; &lt; &gt; arrive escaped), then links, bold, code.
    out = emoji(text)
    out = re.sub(r"<([^|>]+)\|([^>]+)>", r'<a href="\1">\2</a>', out)
    out = re.sub(r"\*([^*\n]+)\*", r"<b>\1</b>", out)
    out = re.sub(r"`([^`\n]+)`", r"<code>\1</code>", out)
    return out.replace("\n", "<br>")


def block_html(b: dict) -> str:
    t = b["type"]
    if t == "header":
        return f'<div class="header">{html.escape(emoji(b["text"]["text"]))}</div>'
    if t == "section":
        parts = [f'<div class="text">{mrkdwn(b["text"]["text"])}</div>'] if "text" in b else []
        if b.get("fields"):
            cells = "".join(f'<div class="field">{mrkdwn(f["text"])}</div>' for f in b["fields"])
            parts.append(f'<div class="fields">{cells}</div>')
        return "".join(parts)
    if t == "context":
        return '<div class="context">' + " ".join(mrkdwn(e.get("text", "")) for e in b["elements"]) + "</div>"
    if t == "actions":
        return '<div class="actions">' + "".join(
            f'<a class="button" href="{html.escape(e.get("url", "#"))}">{html.escape(e["text"]["text"])}</a>'
            for e in b["elements"]) + "</div>"
    return ""


def main() -> None:
    messages = json.load(sys.stdin)
    rows = []
    for m in messages:
        for raw in m.get("blocks") or []:
            assert Block.parse(raw) is not None, raw
            Block.parse(raw).to_dict()
        channel = html.escape(m.get("channel_name") or m.get("channel", ""))
        body = "".join(block_html(b) for b in m.get("blocks") or [])
        rows.append(f'<div class="msg"><div class="avatar">idp</div><div class="main">'
                    f'<div class="who"><b>idp-graph</b> <span class="app">APP</span> '
                    f'<span class="chan">{channel}</span></div>{body}</div></div>')
    print("""<!doctype html><meta charset="utf-8"><style>
body{font-family:Lato,"Helvetica Neue",Helvetica,Arial,sans-serif;font-size:15px;color:#1d1c1d;margin:0;padding:12px;background:#fff;width:720px}
.msg{display:flex;gap:10px;padding:10px 8px;border-bottom:1px solid #eee}
.avatar{width:36px;height:36px;border-radius:6px;background:#4a154b;color:#fff;font-size:12px;display:flex;align-items:center;justify-content:center;flex:none}
.main{flex:1}.who{margin-bottom:4px}.app{background:#eee;color:#616061;font-size:10px;padding:1px 3px;border-radius:2px}
.chan{color:#616061;font-size:12px;margin-left:6px}.header{font-size:18px;font-weight:900;margin:4px 0 8px}
.text{margin:4px 0}.fields{display:grid;grid-template-columns:1fr 1fr;gap:8px 16px;margin:8px 0}
.context{color:#616061;font-size:12px;margin:6px 0}.actions{margin-top:8px;display:flex;gap:8px;flex-wrap:wrap}
.button{border:1px solid #bbb;border-radius:4px;padding:4px 12px;font-weight:700;font-size:13px;color:#1d1c1d;text-decoration:none}
a{color:#1264a3;text-decoration:none}code{background:#f6f6f6;border:1px solid #ddd;border-radius:3px;padding:0 3px;color:#e01e5a;font-size:12px}
</style>""" + "".join(rows))


if __name__ == "__main__":
    main()
