//! Searching and paging a listing of users or clients.
//!
//! Backends return every record already sorted; filtering and paging happen
//! here, once, so that both backends answer a listing the same way.

use serde::Serialize;

/// One page of a listing, with the total matching count.
#[derive(Clone, Debug, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: u64,
}

/// Which records a listing returns: a case-insensitive substring of the
/// username (or client name/id), then `offset`/`limit`.
#[derive(Clone, Debug, Default)]
pub struct Listing {
    pub search: Option<String>,
    pub offset: u64,
    pub limit: u64,
}

impl Listing {
    pub fn everything() -> Self {
        Listing {
            search: None,
            offset: 0,
            limit: u64::MAX / 2,
        }
    }

    fn matches(&self, fields: &[&str]) -> bool {
        match &self.search {
            None => true,
            Some(needle) => {
                let needle = needle.to_lowercase();
                fields.iter().any(|f| f.to_lowercase().contains(&needle))
            }
        }
    }

    /// Filters and pages an already sorted list.
    pub fn apply<T>(&self, items: Vec<T>, fields: impl Fn(&T) -> Vec<&str>) -> Page<T> {
        let matching: Vec<T> = items
            .into_iter()
            .filter(|i| self.matches(&fields(i)))
            .collect();
        let total = matching.len() as u64;
        let items = matching
            .into_iter()
            .skip(self.offset.min(usize::MAX as u64) as usize)
            .take(self.limit.min(usize::MAX as u64) as usize)
            .collect();
        Page { items, total }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listings_filter_then_page() {
        let names = vec!["alice", "bob", "carol", "dave", "Alina"];
        let listing = Listing {
            search: Some("al".into()),
            offset: 1,
            limit: 5,
        };
        let page = listing.apply(names.clone(), |n| vec![*n]);
        assert_eq!(page.total, 2);
        assert_eq!(page.items, vec!["Alina"]);
        let page = Listing {
            search: None,
            offset: 3,
            limit: 10,
        }
        .apply(names, |n| vec![*n]);
        assert_eq!(page.items, vec!["dave", "Alina"]);
    }
}
