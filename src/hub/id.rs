//! Hub model ids: `org/name[@revision]`.

use crate::error::{Error, Result};

/// A model named by hub id, with a revision (branch, tag or commit; `main` by default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubId {
    pub repo: String,
    pub revision: String,
}

impl HubId {
    pub fn parse(spec: &str) -> Result<Self> {
        let (repo, revision) = match spec.rsplit_once('@') {
            Some((repo, rev)) => (repo, rev),
            None => (spec, "main"),
        };
        let valid_part = |s: &str| {
            !s.is_empty()
                && s != "."
                && s != ".."
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        };
        let valid_revision = !revision.is_empty()
            && !revision
                .split('/')
                .any(|p| p.is_empty() || p == "." || p == "..")
            && revision
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c));
        let parts: Vec<&str> = repo.split('/').collect();
        if parts.len() > 2 || !parts.iter().all(|p| valid_part(p)) || !valid_revision {
            return Err(Error::Setting(format!(
                "--model {spec}: not an existing directory, nor a hub id like org/name[@revision]"
            )));
        }
        Ok(Self {
            repo: repo.to_string(),
            revision: revision.to_string(),
        })
    }

    /// The cache folder name: `models--org--name`.
    pub fn cache_folder(&self) -> String {
        format!("models--{}", self.repo.replace('/', "--"))
    }

    /// (owner, name) as the hub API addresses a repo; a bare name has an empty owner.
    pub fn owner_and_name(&self) -> (&str, &str) {
        self.repo.split_once('/').unwrap_or(("", &self.repo))
    }
}

impl std::fmt::Display for HubId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.revision == "main" {
            write!(f, "{}", self.repo)
        } else {
            write!(f, "{}@{}", self.repo, self.revision)
        }
    }
}

pub fn is_commit_hash(revision: &str) -> bool {
    revision.len() == 40 && revision.chars().all(|c| c.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ids_and_revisions() {
        assert_eq!(
            HubId::parse("Helsinki-NLP/opus-mt-fr-en@v1").unwrap(),
            HubId {
                repo: "Helsinki-NLP/opus-mt-fr-en".into(),
                revision: "v1".into()
            }
        );
        assert_eq!(HubId::parse("t5-small").unwrap().revision, "main");
        assert_eq!(
            HubId::parse("org/m@refs/pr/1").unwrap().revision,
            "refs/pr/1"
        );
        for bad in ["", "a/b/c", "../x", "a b/c", "org/name@", "org/name@../x"] {
            assert!(HubId::parse(bad).is_err(), "{bad}");
        }
    }
}
