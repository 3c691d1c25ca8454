//! Where data lives: a location as users write it (a URL, a local path, a glob) resolved into a store URL,
//! a path inside that store and the pattern objects must match.

use object_store::path::Path;
use url::Url;

use crate::error::{Result, StoreError};
use crate::stores::store_key;

/// A parsed location (of an archive, a model, a table): the URL of its fixed prefix and, for globs, the pattern over full paths.
#[derive(Debug, Clone)]
pub struct Location {
    /// As the user wrote it, for messages.
    pub original: String,
    /// `scheme://authority/prefix` without any glob part.
    pub base: Url,
    /// The object-store path of `base`.
    pub prefix: Path,
    /// Matches full object paths when the location had glob characters.
    pub glob: Option<glob::Pattern>,
}

impl Location {
    pub fn parse(location: &str) -> Result<Self> {
        let loc = location.trim();
        if loc.is_empty() {
            return Err(StoreError::config("archive location is empty"));
        }
        let has_scheme = loc.contains("://");
        // Split at the first path segment with glob characters; the rest is matched against listed paths.
        let (fixed, pattern) = match loc.find(['*', '?', '[']) {
            Some(i) => {
                let cut = loc[..i].rfind('/').map_or(0, |j| j + 1);
                (&loc[..cut], Some(&loc[cut..]))
            }
            None => (loc, None),
        };
        let base = if has_scheme {
            Url::parse(fixed)
                .map_err(|e| StoreError::config(format!("invalid archive URL '{loc}': {e}")))?
        } else {
            let p = std::path::Path::new(if fixed.is_empty() { "." } else { fixed });
            let abs = std::path::absolute(p)
                .map_err(|e| StoreError::config(format!("invalid path '{loc}': {e}")))?;
            // Resolve `.` and `..` by hand: object-store paths cannot hold them, and the path need not
            // exist yet for a useful error later ("no objects found").
            let mut clean = std::path::PathBuf::new();
            for c in abs.components() {
                match c {
                    std::path::Component::ParentDir => {
                        clean.pop();
                    }
                    std::path::Component::CurDir => {}
                    other => clean.push(other),
                }
            }
            let abs = clean;
            let mut url = Url::from_file_path(&abs)
                .map_err(|_| StoreError::config(format!("invalid path '{loc}'")))?;
            if fixed.ends_with('/') && !url.path().ends_with('/') {
                url.set_path(&format!("{}/", url.path()));
            }
            url
        };
        match base.scheme() {
            "file" | "s3" | "s3a" | "gs" | "gcs" | "az" | "azure" | "abfs" | "abfss" | "http"
            | "https" | "memory" => {}
            other => {
                return Err(StoreError::config(format!(
                    "unsupported URL scheme '{other}' in '{loc}' (supported: file, s3, gs, az, abfss, http, https, memory)"
                )));
            }
        }
        let prefix = Path::from_url_path(base.path())
            .map_err(|e| StoreError::config(format!("invalid path in '{loc}': {e}")))?;
        let glob = match pattern {
            Some(p) => {
                let full = if prefix.as_ref().is_empty() {
                    p.to_string()
                } else {
                    format!("{}/{p}", prefix.as_ref())
                };
                Some(
                    glob::Pattern::new(&full)
                        .map_err(|e| StoreError::config(format!("invalid glob in '{loc}': {e}")))?,
                )
            }
            None => None,
        };
        Ok(Self {
            original: loc.to_string(),
            base,
            prefix,
            glob,
        })
    }

    /// The location as another process reads it (a cluster's executors, in other folders): a relative
    /// path made an absolute `file://` URL, its glob part kept.
    pub fn portable(&self) -> String {
        if self.original.contains("://") {
            return self.original.clone();
        }
        let glob = match self.original.find(['*', '?', '[']) {
            Some(i) => {
                let cut = self.original[..i].rfind('/').map_or(0, |j| j + 1);
                &self.original[cut..]
            }
            None => "",
        };
        let mut base = self.base.to_string();
        if !glob.is_empty() && !base.ends_with('/') {
            base.push('/');
        }
        format!("{base}{glob}")
    }

    /// The key object stores are registered under: `scheme://authority`.
    pub fn store_url(&self) -> Url {
        store_key(&self.base)
    }

    /// The full URL of an object of this archive's store, for lineage and messages.
    pub fn object_url(&self, location: &Path) -> String {
        let authority = &self.base[url::Position::BeforeHost..url::Position::AfterPort];
        format!("{}://{authority}/{}", self.base.scheme(), location.as_ref())
    }

    pub fn matches(&self, location: &Path) -> bool {
        let opts = glob::MatchOptions {
            require_literal_separator: false,
            ..Default::default()
        };
        self.glob
            .as_ref()
            .is_none_or(|g| g.matches_with(location.as_ref(), opts))
    }
}

#[cfg(test)]
mod portable_tests {
    use super::Location;

    #[test]
    fn relative_paths_become_absolute_urls_that_parse_to_the_same_place() {
        let here = std::env::current_dir().expect("cwd");
        for rel in [
            "exports/",
            "exports/*.zip",
            "exports/a b/chat.txt",
            "./x/../y/[ab]*.jsonl",
        ] {
            let loc = Location::parse(rel).expect("parse");
            let portable = loc.portable();
            assert!(portable.starts_with("file:///"), "{portable}");
            let again = Location::parse(&portable).expect("parse portable");
            assert_eq!(again.prefix, loc.prefix, "{rel} -> {portable}");
            assert_eq!(
                again.glob.as_ref().map(|g| g.as_str().to_string()),
                loc.glob.as_ref().map(|g| g.as_str().to_string()),
                "{rel}"
            );
            assert!(
                again
                    .prefix
                    .as_ref()
                    .starts_with(here.to_str().unwrap_or_default().trim_start_matches('/'))
            );
        }
        let s3 = Location::parse("s3://bucket/a/*.zip").expect("parse");
        assert_eq!(s3.portable(), "s3://bucket/a/*.zip");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_globs() {
        let u = Location::parse("s3://acme/exports/").expect("url");
        assert_eq!(u.store_url().as_str(), "s3://acme");
        assert_eq!(u.prefix.as_ref(), "exports");
        assert!(u.glob.is_none());

        let g = Location::parse("file:///data/whatsapp/*.zip").expect("glob");
        assert_eq!(g.prefix.as_ref(), "data/whatsapp");
        assert!(g.matches(&Path::from("data/whatsapp/chat with Ana.zip")));
        assert!(!g.matches(&Path::from("data/whatsapp/chat.txt")));

        let local = Location::parse("/tmp/x/**/*.jsonl").expect("path");
        assert_eq!(local.base.scheme(), "file");
        assert!(local.matches(&Path::from("tmp/x/a/b.jsonl")));

        assert!(Location::parse("ftp://x/y").is_err());

        let dotted = Location::parse("/data/exports/../chats/./a.zip").expect("dots");
        assert_eq!(dotted.prefix.as_ref(), "data/chats/a.zip");
    }
}
