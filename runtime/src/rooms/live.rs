//! Live tables: "rows of table T changed" told to every tab whose states show T, on every node,
//! coalesced so that a burst of changes reaches each tab as a bounded number of notices.
//!
//! A table's first change is told at once; changes within the next [`WINDOW`] are held and told
//! as one notice when it ends, and so on while they keep coming. The last notice always follows
//! the last change, so a tab never stays on data older than it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// How long a table's notice covers the changes after it: at most one notice per table per
/// window per node.
pub(crate) const WINDOW: Duration = Duration::from_millis(100);

/// The socket.io room of the tabs showing `table`; apart from the app's rooms (`room:…`) and
/// the tabs' own (`tab:…`).
pub(crate) fn live_room(table: &str) -> String {
    format!("live:{table}")
}

/// The tables with a window open, and whether a change came in during it.
#[derive(Default)]
pub(super) struct Windows {
    open: Mutex<HashMap<String, bool>>,
}

impl Windows {
    /// A change of `table`: `true` when it opens a window (tell the tabs now), `false` when
    /// one is open (its end tells them).
    pub(super) fn change(&self, table: &str) -> bool {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        match open.get_mut(table) {
            Some(changed) => {
                *changed = true;
                false
            }
            None => {
                open.insert(table.to_owned(), false);
                true
            }
        }
    }

    /// The end of `table`'s window: `true` when changes came in during it (tell the tabs, and
    /// a new window opens), `false` when none did (the window closes).
    pub(super) fn end(&self, table: &str) -> bool {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        match open.get_mut(table) {
            Some(changed) if *changed => {
                *changed = false;
                true
            }
            _ => {
                open.remove(table);
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_told_once_at_its_start_and_once_after_it() {
        let windows = Windows::default();
        assert!(windows.change("notes"), "the first change is told at once");
        for _ in 0..500 {
            assert!(!windows.change("notes"), "changes in the window wait");
        }
        assert!(windows.change("posts"), "each table has its own window");
        assert!(
            windows.end("notes"),
            "the window's end tells of what came in"
        );
        assert!(!windows.end("notes"), "a quiet window closes");
        assert!(
            windows.change("notes"),
            "the next change is told at once again"
        );
        assert!(!windows.end("posts"));
    }
}
