//! Image references as Docker spells them: `busybox`, `busybox:1.36`,
//! `library/busybox@sha256:...`, `127.0.0.1:5000/lab/base:v1`. The first
//! component is a registry only if it looks like a host (a dot, a port, or
//! `localhost`); otherwise the registry is Docker Hub, and a one-word name
//! lives under `library/` there.

use super::digest::Digest;
use std::fmt;

pub const DOCKER_HUB: &str = "docker.io";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    /// `docker.io`, `quay.io`, `127.0.0.1:5000`.
    pub registry: String,
    /// `library/busybox`, `lab/base`.
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

impl Reference {
    pub fn parse(text: &str) -> Result<Reference, String> {
        let bad = |why: &str| format!("invalid reference {text:?}: {why}");
        let (name, digest) = match text.split_once('@') {
            Some((name, digest)) => (name, Some(Digest::parse(digest).map_err(|e| bad(&e))?)),
            None => (text, None),
        };
        // A tag follows the last colon after the last slash (a colon before
        // it is a registry's port).
        let last_slash = name.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name[last_slash..].rfind(':') {
            Some(i) => (
                &name[..last_slash + i],
                Some(name[last_slash + i + 1..].to_string()),
            ),
            None => (name, None),
        };
        let (registry, repository) = match name.split_once('/') {
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), rest.to_string())
            }
            _ => (DOCKER_HUB.to_string(), name.to_string()),
        };
        let host_ok = registry.split(['.', ':', '[', ']']).all(|label| {
            label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        }) && registry.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '[');
        if !host_ok {
            return Err(bad(
                "a registry is a host name or address, with an optional :port",
            ));
        }
        let repository = match registry == DOCKER_HUB && !repository.contains('/') {
            true => format!("library/{repository}"),
            false => repository,
        };
        if repository.is_empty()
            || !repository.split('/').all(|part| {
                !part.is_empty()
                    && part
                        .bytes()
                        .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-'))
                    && !part.starts_with(['.', '_', '-'])
            })
        {
            return Err(bad(
                "a name is lowercase letters, digits, '.', '_' and '-', parts separated by '/'",
            ));
        }
        if let Some(tag) = &tag {
            let valid = !tag.is_empty()
                && tag.len() <= 128
                && tag
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
                && !tag.starts_with(['.', '-']);
            if !valid {
                return Err(bad("a tag is up to 128 letters, digits, '.', '_' and '-'"));
            }
        }
        let tag = match (&tag, &digest) {
            (None, None) => Some("latest".to_string()),
            _ => tag,
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// The name as `docker images` shows it: Docker Hub's prefix and
    /// `library/` left out.
    pub fn familiar_name(&self) -> String {
        match self.registry.as_str() {
            DOCKER_HUB => self
                .repository
                .strip_prefix("library/")
                .unwrap_or(&self.repository)
                .to_string(),
            registry => format!("{registry}/{}", self.repository),
        }
    }

    /// `name:tag`, the key of a tag in the store (no digest).
    pub fn tagged(&self) -> Option<String> {
        self.tag
            .as_ref()
            .map(|tag| format!("{}:{tag}", self.familiar_name()))
    }

    /// The host the registry's API answers on: Docker Hub's name is not its
    /// API's host.
    pub fn api_host(&self) -> &str {
        match self.registry.as_str() {
            DOCKER_HUB => "registry-1.docker.io",
            registry => registry,
        }
    }

    /// What to ask the registry for: the digest if there is one, else the tag.
    pub fn manifest_reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(digest), _) => digest.to_string(),
            (None, Some(tag)) => tag.clone(),
            (None, None) => "latest".into(),
        }
    }

    /// Plain HTTP is used only for registries on a loopback address, as
    /// Docker treats 127.0.0.0/8 (and `localhost`) as insecure by default.
    pub fn is_loopback(&self) -> bool {
        let host = match self.registry.rsplit_once(':') {
            Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
            _ => self.registry.as_str(),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|address| address.is_loopback())
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(text: &str) -> (String, String, Option<String>, bool) {
        let r = Reference::parse(text).unwrap();
        (r.registry, r.repository, r.tag, r.digest.is_some())
    }

    #[test]
    fn docker_hub_is_the_default_and_one_word_names_live_in_library() {
        assert_eq!(
            parts("busybox"),
            (
                "docker.io".into(),
                "library/busybox".into(),
                Some("latest".into()),
                false
            )
        );
        assert_eq!(
            parts("busybox:1.36"),
            (
                "docker.io".into(),
                "library/busybox".into(),
                Some("1.36".into()),
                false
            )
        );
        assert_eq!(
            parts("lab/base"),
            (
                "docker.io".into(),
                "lab/base".into(),
                Some("latest".into()),
                false
            )
        );
        assert_eq!(
            Reference::parse("busybox").unwrap().familiar_name(),
            "busybox"
        );
        assert_eq!(
            Reference::parse("busybox").unwrap().api_host(),
            "registry-1.docker.io"
        );
    }

    #[test]
    fn a_first_part_with_a_dot_a_port_or_localhost_is_a_registry() {
        assert_eq!(
            parts("127.0.0.1:5000/lab/base:v1"),
            (
                "127.0.0.1:5000".into(),
                "lab/base".into(),
                Some("v1".into()),
                false
            )
        );
        assert_eq!(
            parts("quay.io/podman/hello"),
            (
                "quay.io".into(),
                "podman/hello".into(),
                Some("latest".into()),
                false
            )
        );
        assert_eq!(
            parts("localhost/x"),
            ("localhost".into(), "x".into(), Some("latest".into()), false)
        );
        assert_eq!(
            Reference::parse("localhost:5000/x:1")
                .unwrap()
                .familiar_name(),
            "localhost:5000/x"
        );
    }

    #[test]
    fn a_digest_pins_the_content_and_needs_no_tag() {
        let hex = "a".repeat(64);
        let r = Reference::parse(&format!("busybox@sha256:{hex}")).unwrap();
        assert_eq!(r.tag, None);
        assert_eq!(r.manifest_reference(), format!("sha256:{hex}"));
        assert_eq!(
            r.to_string(),
            format!("docker.io/library/busybox@sha256:{hex}")
        );
    }

    #[test]
    fn bad_names_are_refused_with_the_rule() {
        for bad in [
            "Busybox",
            "busybox:",
            "a//b",
            "busybox@sha256:12",
            "../x",
            "x:.tag",
            "",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_loopback_registries_are_plain_http_by_default() {
        assert!(Reference::parse("127.0.0.1:5000/x").unwrap().is_loopback());
        assert!(Reference::parse("127.8.9.1:5000/x").unwrap().is_loopback());
        assert!(Reference::parse("localhost:5000/x").unwrap().is_loopback());
        assert!(Reference::parse("[::1]:5000/x").unwrap().is_loopback());
        assert!(!Reference::parse("quay.io/x").unwrap().is_loopback());
        assert!(!Reference::parse("10.0.0.1:5000/x").unwrap().is_loopback());
    }
}
