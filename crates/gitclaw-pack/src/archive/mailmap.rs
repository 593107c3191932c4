//! A `.mailmap`, as git reads one for `%aN`, `%aE` and `%aL` (`mailmap.c`:
//! `read_mailmap_line`, `add_mapping`, `map_user`). Lines map a commit's
//! email (ASCII case ignored), or its email and name, to a proper name, a
//! proper email, or both:
//!
//! ```text
//! Proper Name <commit@email>
//! <proper@email> <commit@email>
//! Proper Name <proper@email> <commit@email>
//! Proper Name <proper@email> Commit Name <commit@email>
//! ```

use std::collections::HashMap;

/// A name and an email a mapping gives (either may be absent: kept).
type Proper = (Option<Vec<u8>>, Option<Vec<u8>>);

/// [`Proper`], borrowed.
type ProperRef<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);

/// A line's name (none when empty), email, and what follows (none when
/// nothing does).
type NameEmail<'a> = (Option<&'a [u8]>, &'a [u8], Option<&'a [u8]>);

#[derive(Debug, Default)]
pub(super) struct Mailmap {
    /// By the commit's email, lower-cased.
    by_email: HashMap<Vec<u8>, Entry>,
}

#[derive(Debug, Default)]
struct Entry {
    /// For any name under this email.
    simple: Proper,
    /// For one name (lower-cased) under this email.
    by_name: HashMap<Vec<u8>, Proper>,
}

impl Mailmap {
    /// The mailmap in `data` (read as git reads it: up to a NUL, by lines,
    /// `#` lines skipped, lines it cannot read ignored).
    pub fn parse(data: &[u8]) -> Mailmap {
        let data = &data[..data.iter().position(|&b| b == 0).unwrap_or(data.len())];
        let mut map = Mailmap::default();
        for line in data.split(|&b| b == b'\n') {
            if line.first() == Some(&b'#') {
                continue;
            }
            let Some((name1, email1, rest)) = name_and_email(line, false) else {
                continue;
            };
            let (name2, email2) = match rest.and_then(|rest| name_and_email(rest, true)) {
                Some((name, email, _)) => (name, Some(email)),
                None => (None, None),
            };
            map.add(name1, email1, name2, email2);
        }
        map
    }

    /// git's `add_mapping`.
    fn add(
        &mut self,
        new_name: Option<&[u8]>,
        new_email: &[u8],
        old_name: Option<&[u8]>,
        old_email: Option<&[u8]>,
    ) {
        let (key, new_email) = match old_email {
            Some(old) => (old, Some(new_email)),
            None => (new_email, None),
        };
        let entry = self.by_email.entry(key.to_ascii_lowercase()).or_default();
        match old_name {
            None => {
                if let Some(name) = new_name {
                    entry.simple.0 = Some(name.to_vec());
                }
                if let Some(email) = new_email {
                    entry.simple.1 = Some(email.to_vec());
                }
            }
            Some(old_name) => {
                entry.by_name.insert(
                    old_name.to_ascii_lowercase(),
                    (new_name.map(<[u8]>::to_vec), new_email.map(<[u8]>::to_vec)),
                );
            }
        }
    }

    /// git's `map_user`: the proper name and email of `name <email>`, each
    /// where the map gives one; none when it maps nothing.
    pub fn map(&self, email: &[u8], name: &[u8]) -> Option<ProperRef<'_>> {
        let entry = self.by_email.get(&email.to_ascii_lowercase())?;
        let (name, email) = match entry.by_name.is_empty() {
            true => &entry.simple,
            false => entry
                .by_name
                .get(&name.to_ascii_lowercase())
                .unwrap_or(&entry.simple),
        };
        if name.is_none() && email.is_none() {
            return None;
        }
        Some((name.as_deref(), email.as_deref()))
    }
}

/// git's `parse_name_and_email`: of `Name <email> rest`, the name (trimmed;
/// none when empty), the email, and the rest when there is any. An empty
/// email only when `allow_empty`.
fn name_and_email(line: &[u8], allow_empty: bool) -> Option<NameEmail<'_>> {
    let left = line.iter().position(|&b| b == b'<')?;
    let right = left + 1 + line[left + 1..].iter().position(|&b| b == b'>')?;
    if !allow_empty && right == left + 1 {
        return None;
    }
    let name = &line[..left];
    let start = name.iter().position(|&b| !super::subst::is_space(b));
    let end = name.iter().rposition(|&b| !super::subst::is_space(b));
    let name = match (start, end) {
        (Some(start), Some(end)) => Some(&name[start..=end]),
        _ => None,
    };
    let rest = &line[right + 1..];
    Some((
        name,
        &line[left + 1..right],
        (!rest.is_empty()).then_some(rest),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_form_maps_as_git_maps_it() {
        let map = Mailmap::parse(
            b"# a comment <not@used>\n\
              Proper One <one@example.com>\n\
              <proper.two@example.com> <Two@Example.com>\n\
              Proper Three <proper3@example.com> <three@example.com>\n\
              Right Four <right4@example.com> wrong four <four@example.com>\n\
              Name Only <>\n",
        );
        let map = |email: &str, name: &str| {
            map.map(email.as_bytes(), name.as_bytes()).map(|(n, e)| {
                (
                    n.map(|n| String::from_utf8_lossy(n).into_owned()),
                    e.map(|e| String::from_utf8_lossy(e).into_owned()),
                )
            })
        };
        let some = |s: &str| Some(s.to_string());
        assert_eq!(
            map("one@example.com", "x"),
            Some((some("Proper One"), None))
        );
        assert_eq!(
            map("TWO@example.COM", "x"),
            Some((None, some("proper.two@example.com")))
        );
        assert_eq!(
            map("three@example.com", "x"),
            Some((some("Proper Three"), some("proper3@example.com")))
        );
        assert_eq!(
            map("four@example.com", "Wrong Four"),
            Some((some("Right Four"), some("right4@example.com")))
        );
        // Under an email mapped only for one name, another name maps nothing.
        assert_eq!(map("four@example.com", "someone else"), None);
        assert_eq!(map("nobody@example.com", "x"), None);
        // An empty email cannot be a commit email on a line's first half.
        assert_eq!(map("", "Name Only"), None);
    }
}
