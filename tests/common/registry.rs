//! A real registry for the tests: Debian's docker-registry (distribution
//! 2.8) on 127.0.0.1, filled by skopeo, its access log read back to count
//! what a client asked for. Used by ch08_pull (pull) and ch08_ship (push).

use super::{Scratch, output_with_input, require_tool, stderr};
use container_lab::image::digest::Digest;
use serde_json::json;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `size` bytes that do not compress (a linear congruential generator):
/// layers big enough for two pulls to overlap, or for a push in chunks.
pub fn noise(size: usize, seed: u64) -> Vec<u8> {
    let mut state = seed;
    (0..size)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 56) as u8
        })
        .collect()
}

pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A docker-registry on 127.0.0.1, its storage and log in a scratch
/// directory; killed when dropped (also when the test fails), before the
/// directory goes.
pub struct Registry {
    child: Child,
    pub port: u16,
    pub dir: Scratch,
}

impl Registry {
    pub fn start(name: &str) -> Registry {
        Registry::start_with(name, |_| String::new())
    }

    /// A registry whose configuration ends with what `extra` writes, given
    /// the registry's directory.
    pub fn start_with(name: &str, extra: impl FnOnce(&Path) -> String) -> Registry {
        require_tool("docker-registry", "docker-registry");
        require_tool("skopeo", "skopeo");
        let dir = Scratch::new(&format!("registry-{name}"));
        let port = free_port();
        let extra = extra(&dir);
        // distribution's configuration (docs/configuration.md): the access
        // log (on by default) is how the tests count what was downloaded.
        let config = dir.join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n{extra}",
                dir.join("storage").display()
            ),
        )
        .unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("registry.log"))
            .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start docker-registry");
        let registry = Registry { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "docker-registry did not listen on 127.0.0.1:{port}:\n{}",
                registry.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        registry
    }

    /// `127.0.0.1:PORT`
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Copy `name` of a layout into the registry as REPO:TAG with skopeo
    /// copy, with its `flags` (`--all` for every platform of an index,
    /// `--format v2s2` to convert to Docker's schema 2).
    pub fn push(&self, layout: &Path, name: &str, repository_tag: &str, flags: &[&str]) {
        let mut skopeo = Command::new("skopeo");
        skopeo.args([
            "--insecure-policy",
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
        ]);
        skopeo.args(flags);
        let output = skopeo
            .arg(format!("oci:{}:{name}", layout.display()))
            .arg(format!("docker://{}/{repository_tag}", self.host()))
            .output()
            .expect("run skopeo");
        assert!(
            output.status.success(),
            "skopeo copy failed: {}",
            stderr(&output)
        );
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("registry.log")).unwrap_or_default()
    }

    /// The lines of the access log (Apache's combined format) for our
    /// client's GETs whose path contains `part`, counted once the count
    /// stops changing (the registry logs a request after it answers it).
    pub fn gets(&self, part: &str) -> usize {
        self.requests("GET", part)
    }

    /// The same for any method (`HEAD`, `POST`, `PATCH`, `PUT`).
    pub fn requests(&self, method: &str, part: &str) -> usize {
        let request = format!("\"{method} /v2/");
        let count = || {
            self.log()
                .lines()
                .filter(|l| l.contains(&request) && l.contains(part))
                .filter(|l| l.contains("container-lab/"))
                .count()
        };
        let mut last = count();
        loop {
            std::thread::sleep(Duration::from_millis(200));
            match count() {
                now if now == last => return now,
                now => last = now,
            }
        }
    }

    /// Where distribution keeps a blob's bytes (its storage driver layout:
    /// docker/registry/v2/blobs/sha256/XX/HEX/data).
    pub fn blob_data(&self, digest: &Digest) -> PathBuf {
        self.dir
            .join("storage/docker/registry/v2/blobs/sha256")
            .join(&digest.hex()[..2])
            .join(digest.hex())
            .join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// RFC 4648 section 5 (base64url, no padding), as JWTs are written.
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

fn openssl(args: &[&str], input: Option<&[u8]>) -> Vec<u8> {
    let output = output_with_input(
        Command::new("openssl").args(args),
        input.unwrap_or_default(),
    );
    assert!(
        output.status.success(),
        "openssl {args:?} failed: {}",
        stderr(&output)
    );
    output.stdout
}

/// A token server of Docker's token authentication specification, as
/// small as it can be: a self-signed certificate the registry trusts
/// (`rootcertbundle`), and one JWT signed with its key (RS256, the
/// certificate in `x5c`) that grants pull and push on `lab/base` and
/// nothing else. It hands that token to anyone who asks.
pub struct TokenServer {
    pub port: u16,
    server: FakeServer,
}

impl TokenServer {
    pub fn start(dir: &Path) -> TokenServer {
        require_tool("openssl", "openssl");
        let (key, cert) = (dir.join("token.key"), dir.join("token.pem"));
        openssl(
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=lab-token",
            ]
            .into_iter()
            .chain([
                "-keyout",
                key.to_str().unwrap(),
                "-out",
                cert.to_str().unwrap(),
            ])
            .collect::<Vec<_>>(),
            None,
        );
        let der = openssl(
            &["x509", "-in", cert.to_str().unwrap(), "-outform", "DER"],
            None,
        );
        // x5c holds standard base64 (RFC 7515 section 4.1.6).
        let x5c = base64url(&der).replace('-', "+").replace('_', "/");
        let x5c = format!("{x5c}{}", "=".repeat((4 - x5c.len() % 4) % 4));
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let header = json!({"typ": "JWT", "alg": "RS256", "x5c": [x5c]});
        let claims = json!({
            "iss": "lab-issuer", "sub": "", "aud": "lab-registry", "jti": "lab",
            "iat": now - 60, "nbf": now - 60, "exp": now + 3600,
            "access": [{"type": "repository", "name": "lab/base", "actions": ["pull", "push"]}],
        });
        let signed = format!(
            "{}.{}",
            base64url(header.to_string().as_bytes()),
            base64url(claims.to_string().as_bytes())
        );
        let signature = openssl(
            &["dgst", "-sha256", "-sign", key.to_str().unwrap()],
            Some(signed.as_bytes()),
        );
        let body = json!({"token": format!("{signed}.{}", base64url(&signature))}).to_string();
        let server = FakeServer::start(move |_| {
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
        });
        TokenServer {
            port: server.port,
            server,
        }
    }

    /// The requests our client made (its User-Agent is container-lab's),
    /// each as its first line and its User-Agent.
    pub fn ours(&self) -> Vec<String> {
        self.server
            .ours()
            .iter()
            .map(|head| {
                let agent = head
                    .lines()
                    .find(|l| l.to_ascii_lowercase().starts_with("user-agent:"))
                    .unwrap_or("");
                format!("{} {agent}", head.lines().next().unwrap_or(""))
            })
            .collect()
    }

    /// distribution's `auth.token` section for this server.
    pub fn registry_config(&self, dir: &Path) -> String {
        format!(
            "auth:\n  token:\n    realm: http://127.0.0.1:{}/token\n    service: lab-registry\n    issuer: lab-issuer\n    rootcertbundle: {}\n",
            self.port,
            dir.join("token.pem").display()
        )
    }
}

/// An HTTP server on 127.0.0.1 as small as it can be, for what a real
/// registry never does: a thread answering each request (its head, the
/// body read and dropped) with the whole response `answer` writes for
/// the head, then closing the connection. It keeps every request's head.
pub struct FakeServer {
    pub port: u16,
    heads: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl FakeServer {
    pub fn start(answer: impl Fn(&str) -> String + Send + 'static) -> FakeServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let heads = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = heads.clone();
        // Serves until the test process ends.
        std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                let mut head = Vec::new();
                let mut byte = [0u8];
                while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let length = head
                    .lines()
                    .find_map(|l| {
                        let (name, value) = l.split_once(':')?;
                        name.eq_ignore_ascii_case("content-length")
                            .then(|| value.trim().parse::<u64>().ok())?
                    })
                    .unwrap_or(0);
                let _ = std::io::copy(&mut (&mut stream).take(length), &mut std::io::sink());
                seen.lock().unwrap().push(head.clone());
                let response = answer(&head).replacen("\r\n", "\r\nConnection: close\r\n", 1);
                let _ = stream.write_all(response.as_bytes());
            }
        });
        FakeServer { port, heads }
    }

    /// The heads of the requests our client made (its User-Agent is
    /// container-lab's).
    pub fn ours(&self) -> Vec<String> {
        self.heads
            .lock()
            .unwrap()
            .iter()
            .filter(|head| head.contains("container-lab/"))
            .cloned()
            .collect()
    }

    /// The heads of every request, ours or not.
    pub fn all(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }
}
