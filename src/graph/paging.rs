//! Relay paging over lists that are sorted by a string key (entity refs, app names...).
//!
//! Cursors are keyset cursors: an opaque base64 of the key of the last item seen. Paging with
//! them yields every item exactly once even while the list changes between pages (an item
//! added behind the cursor is simply not seen, nothing is repeated or skipped otherwise),
//! which offset cursors cannot promise.

use async_graphql::{Error, SimpleObject};
use base64::Engine as _;

use super::error::bad_input;

const CURSOR_PREFIX: &str = "k:";

pub fn encode_cursor(key: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{CURSOR_PREFIX}{key}"))
}

pub fn decode_cursor(cursor: &str) -> Result<String, Error> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor.trim_end_matches('='))
        .map_err(|_| bad_input("`after` is not a cursor this server issued"))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| bad_input("`after` is not a cursor this server issued"))?;
    text.strip_prefix(CURSOR_PREFIX)
        .map(str::to_string)
        .ok_or_else(|| bad_input("`after` is not a cursor this server issued"))
}

/// Validated `first`/`after` arguments.
#[derive(Debug, Clone)]
pub struct PageRequest {
    pub first: usize,
    pub after: Option<String>,
}

pub const DEFAULT_PAGE_SIZE: usize = 100;

impl PageRequest {
    pub fn new(first: Option<i32>, after: Option<String>, max: usize) -> Result<Self, Error> {
        let first = match first {
            None => DEFAULT_PAGE_SIZE.min(max),
            Some(n) if n < 0 => return Err(bad_input("`first` must not be negative")),
            Some(n) if n as usize > max => {
                return Err(bad_input(format!("`first` must be at most {max}")))
            }
            Some(n) => n as usize,
        };
        let after = after.as_deref().map(decode_cursor).transpose()?;
        Ok(Self { first, after })
    }
}

#[derive(SimpleObject, Debug, Clone, Default)]
pub struct PageInfo {
    pub has_next_page: bool,
    pub has_previous_page: bool,
    pub start_cursor: Option<String>,
    pub end_cursor: Option<String>,
}

/// One page of items cut from a key-sorted sequence, plus the total.
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: usize,
    pub page_info: PageInfo,
}

/// Cuts a page from `items`, which must be sorted by `key` ascending. Counts everything (the
/// caller has already removed what the principal may not see, so the total is theirs).
pub fn paginate<T>(
    items: impl IntoIterator<Item = T>,
    key: impl Fn(&T) -> &str,
    req: &PageRequest,
) -> Page<T> {
    let mut total = 0usize;
    let mut page = Vec::with_capacity(req.first.min(1024));
    let mut has_next = false;
    for item in items {
        total += 1;
        if let Some(after) = &req.after {
            if key(&item) <= after.as_str() {
                continue;
            }
        }
        if page.len() < req.first {
            page.push(item);
        } else {
            has_next = true;
        }
    }
    let page_info = PageInfo {
        has_next_page: has_next,
        has_previous_page: req.after.is_some(),
        start_cursor: page.first().map(|i| encode_cursor(key(i))),
        end_cursor: page.last().map(|i| encode_cursor(key(i))),
    };
    Page {
        items: page,
        total,
        page_info,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        assert_eq!(decode_cursor(&encode_cursor("a:b/c")).unwrap(), "a:b/c");
        assert!(decode_cursor("!!").is_err());
        assert!(decode_cursor(&base64::engine::general_purpose::STANDARD.encode("x")).is_err());
    }

    #[test]
    fn pages_cover_every_item_once() {
        let items: Vec<String> = (0..25).map(|i| format!("{i:03}")).collect();
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let req = PageRequest::new(Some(7), after.clone(), 100).unwrap();
            let page = paginate(items.iter(), |s| s.as_str(), &req);
            assert_eq!(page.total, 25);
            seen.extend(page.items.iter().map(|s| s.to_string()));
            if !page.page_info.has_next_page {
                break;
            }
            after = page.page_info.end_cursor;
        }
        assert_eq!(seen, items);
    }

    #[test]
    fn page_size_is_bounded() {
        assert!(PageRequest::new(Some(-1), None, 10).is_err());
        assert!(PageRequest::new(Some(11), None, 10).is_err());
        assert_eq!(PageRequest::new(None, None, 10).unwrap().first, 10);
    }
}
