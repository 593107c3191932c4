//! Partial-clone object filters (`--filter=…`): parsing the spec git sends and
//! deciding, object by object, whether the filter lets it out. Kept apart from the
//! walk so the grammar of a filter spec lives in one place.

use gix_object::Kind;

use crate::Result;

/// A partial-clone object filter (`--filter=…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// `blob:none`: no blobs.
    BlobNone,
    /// `blob:limit=<n>`: no blobs of `n` bytes or more.
    BlobLimit(u64),
    /// `tree:<depth>`: no trees or blobs at `depth` or deeper below a root tree.
    TreeDepth(u64),
    /// `object:type=<kind>`: only objects of that kind (but those asked for
    /// by name; trees are still walked for the blobs under them).
    ObjectType(Kind),
    /// `combine:<a>+<b>…`: an object goes out only if every filter lets it.
    Combine(Vec<Filter>),
}

impl Filter {
    /// Parse a filter spec as git sends it.
    pub fn parse(spec: &str) -> std::result::Result<Filter, String> {
        if spec == "blob:none" {
            return Ok(Filter::BlobNone);
        }
        if let Some(limit) = spec.strip_prefix("blob:limit=") {
            return parse_size(limit)
                .map(Filter::BlobLimit)
                .ok_or_else(|| format!("invalid filter-spec '{spec}'"));
        }
        if let Some(depth) = spec.strip_prefix("tree:") {
            return depth
                .parse::<u64>()
                .map(Filter::TreeDepth)
                .map_err(|_| format!("invalid filter-spec '{spec}'"));
        }
        if let Some(kind) = spec.strip_prefix("object:type=") {
            return Kind::from_bytes(kind.as_bytes())
                .map(Filter::ObjectType)
                .map_err(|_| format!("invalid filter-spec '{spec}'"));
        }
        if let Some(list) = spec.strip_prefix("combine:") {
            let parts: std::result::Result<Vec<Filter>, String> = list
                .split('+')
                .map(|part| {
                    let decoded = percent_decode(part)
                        .ok_or_else(|| format!("invalid filter-spec '{spec}'"))?;
                    if decoded.starts_with("combine:") {
                        return Err(format!(
                            "nested combine filters are not supported: '{spec}'"
                        ));
                    }
                    Filter::parse(&decoded)
                })
                .collect();
            let parts = parts?;
            if parts.is_empty() {
                return Err(format!("invalid filter-spec '{spec}'"));
            }
            return Ok(Filter::Combine(parts));
        }
        Err(format!("unsupported filter-spec '{spec}'"))
    }

    /// Whether a partial clone made with this filter holds every object of
    /// `kind` that its commits reach: git leaves out what the filter refuses,
    /// so a fetch's thin pack may lean only on kinds it keeps whole (a delta
    /// against a left-out object makes the client fetch that base on its
    /// own, a request each, before it can read the pack).
    pub fn keeps_every(&self, kind: Kind) -> bool {
        match self {
            Filter::BlobNone | Filter::BlobLimit(_) => kind != Kind::Blob,
            Filter::TreeDepth(_) => !matches!(kind, Kind::Tree | Kind::Blob),
            Filter::ObjectType(only) => kind == *only,
            Filter::Combine(all) => all.iter().all(|filter| filter.keeps_every(kind)),
        }
    }

    /// Whether the walk goes into a tree met at `depth` below its root tree
    /// (whether or not the tree itself goes out): not where every entry below
    /// would be refused anyway; see [`Filter::first_meeting_decides`] for a
    /// combination.
    pub(super) fn enters(&self, depth: u64) -> bool {
        match self {
            Filter::BlobNone | Filter::BlobLimit(_) => true,
            Filter::TreeDepth(max) => depth.saturating_add(1) < *max,
            Filter::ObjectType(only) => matches!(only, Kind::Tree | Kind::Blob),
            Filter::Combine(all) if self.first_meeting_decides() => {
                all.iter().any(|filter| filter.enters(depth))
            }
            Filter::Combine(all) => all.iter().all(|filter| filter.enters(depth)),
        }
    }

    /// Whether what goes out below a tree depends on the depth it is met at
    /// (`tree:<depth>`): a tree met again higher up is then walked again.
    pub(super) fn depth_matters(&self) -> bool {
        match self {
            Filter::TreeDepth(_) => true,
            Filter::Combine(all) => {
                !self.first_meeting_decides() && all.iter().any(Filter::depth_matters)
            }
            _ => false,
        }
    }

    /// A combination of `tree:<depth>` with a filter that keeps some trees
    /// whole (`blob:…`, `object:type=tree|blob`), as git applies it: each
    /// filter remembers what it looked at, so an object is sent or not where
    /// the walk first meets it, and a tree is walked into if any of the
    /// filters walks into it. A tree first met too deep is not sent even
    /// where it recurs higher up.
    pub(super) fn first_meeting_decides(&self) -> bool {
        let Filter::Combine(all) = self else {
            return false;
        };
        let keeps_trees = |filter: &Filter| match filter {
            Filter::BlobNone | Filter::BlobLimit(_) => true,
            Filter::ObjectType(only) => matches!(only, Kind::Tree | Kind::Blob),
            _ => false,
        };
        all.iter().any(Filter::depth_matters) && all.iter().any(keeps_trees)
    }

    /// Whether an object of `kind` at `depth` below its root tree goes out;
    /// `size` is asked for only by size filters.
    pub(super) fn admits(
        &self,
        kind: Kind,
        depth: u64,
        size: &mut dyn FnMut() -> Result<u64>,
    ) -> Result<bool> {
        Ok(match self {
            Filter::BlobNone => kind != Kind::Blob,
            Filter::BlobLimit(limit) => kind != Kind::Blob || size()? < *limit,
            Filter::TreeDepth(max) => !matches!(kind, Kind::Tree | Kind::Blob) || depth < *max,
            Filter::ObjectType(only) => kind == *only,
            Filter::Combine(all) => {
                for filter in all {
                    if !filter.admits(kind, depth, size)? {
                        return Ok(false);
                    }
                }
                true
            }
        })
    }
}

fn parse_size(text: &str) -> Option<u64> {
    let (digits, factor) = match text.as_bytes().last()? {
        b'k' | b'K' => (&text[..text.len() - 1], 1u64 << 10),
        b'm' | b'M' => (&text[..text.len() - 1], 1 << 20),
        b'g' | b'G' => (&text[..text.len() - 1], 1 << 30),
        _ => (text, 1),
    };
    digits.parse::<u64>().ok()?.checked_mul(factor)
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}
