//! A hub-like HTTP server on 127.0.0.1 for the download tests, with the real endpoints'
//! shapes: `GET /api/models/{repo}/revision/{rev}` (sha, siblings) and
//! `HEAD|GET /{repo}/resolve/{rev}/{file}` (ETag, X-Repo-Commit, Content-Length, Range),
//! 401/404 answers with `X-Error-Code`. It logs every request and can cut one file's
//! body short once, to test interrupted downloads.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use sha2::Digest;

pub struct Repo {
    pub commit: String,
    pub files: Vec<(String, Vec<u8>)>,
    pub gated: bool,
}

impl Repo {
    /// A repo serving the files of a local directory at `commit`.
    pub fn from_dir(dir: &Path, commit: &str) -> Self {
        let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap())
            // The references transformers gave are the tests', not the repo's.
            .filter(|e| {
                !matches!(
                    e.file_name().to_str(),
                    Some("expected.json" | "cross_attentions.json")
                )
            })
            .map(|e| {
                (
                    e.file_name().to_string_lossy().to_string(),
                    std::fs::read(e.path()).unwrap(),
                )
            })
            .collect();
        files.sort();
        Self {
            commit: commit.to_string(),
            files,
            gated: false,
        }
    }
}

#[derive(Default)]
struct State {
    repos: HashMap<String, Repo>,
    log: Vec<String>,
    cut_once: HashSet<String>,
}

pub struct HubServer {
    pub endpoint: String,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    address: std::net::SocketAddr,
}

impl HubServer {
    pub fn start(repos: Vec<(&str, Repo)>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State {
            repos: repos
                .into_iter()
                .map(|(id, r)| (id.to_string(), r))
                .collect(),
            ..Default::default()
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (state2, stop2) = (state.clone(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    let state = state2.clone();
                    std::thread::spawn(move || {
                        let _ = serve(stream, &state);
                    });
                }
            }
        });
        Self {
            endpoint: format!("http://{address}"),
            state,
            stop,
            address,
        }
    }

    /// Requests seen so far, as "METHOD path".
    pub fn log(&self) -> Vec<String> {
        self.state.lock().unwrap().log.clone()
    }

    /// The next GET of `file` sends half its body and drops the connection.
    pub fn cut_next_download(&self, file: &str) {
        self.state.lock().unwrap().cut_once.insert(file.to_string());
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.address); // wake the accept loop
    }
}

impl Drop for HubServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// LFS files are addressed by the sha256 of their content, small git files by git's sha1.
pub fn etag(name: &str, content: &[u8]) -> String {
    let lfs = [".safetensors", ".bin", ".spm", ".model"]
        .iter()
        .any(|ext| name.ends_with(ext));
    let digest: Vec<u8> = if lfs {
        sha2::Sha256::digest(content).to_vec()
    } else {
        let mut h = sha1::Sha1::new();
        h.update(format!("blob {}\0", content.len()).as_bytes());
        h.update(content);
        h.finalize().to_vec()
    };
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn serve(stream: TcpStream, state: &Mutex<State>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut headers = HashMap::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let mut parts = request_line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("").to_string();
    let mut state = state.lock().unwrap();
    state.log.push(format!("{method} {path}"));
    let response = route(&mut state, method, &path, &headers);
    drop(state);
    write_response(stream, method, response)
}

struct Response {
    status: &'static str,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Send only this many body bytes, then close (an interrupted transfer).
    cut_at: Option<usize>,
}

fn error(status: &'static str, code: &str) -> Response {
    Response {
        status,
        headers: vec![
            ("X-Error-Code".into(), code.into()),
            ("Content-Type".into(), "application/json".into()),
        ],
        body: format!("{{\"error\": \"{code}\"}}").into_bytes(),
        cut_at: None,
    }
}

fn route(
    state: &mut State,
    method: &str,
    path: &str,
    headers: &HashMap<String, String>,
) -> Response {
    let authorized = headers
        .get("authorization")
        .is_some_and(|a| a == "Bearer secret-token");
    if let Some(rest) = path.strip_prefix("/api/models/") {
        let Some((repo_id, rev)) = rest.split_once("/revision/") else {
            return error("404 Not Found", "RepoNotFound");
        };
        let Some(repo) = state.repos.get(repo_id) else {
            return error("401 Unauthorized", "RepoNotFound");
        };
        if repo.gated && !authorized {
            return error("401 Unauthorized", "GatedRepo");
        }
        if rev != "main" && rev != repo.commit {
            return error("404 Not Found", "RevisionNotFound");
        }
        let siblings: Vec<String> = repo
            .files
            .iter()
            .map(|(n, _)| format!("{{\"rfilename\": \"{n}\"}}"))
            .collect();
        let body = format!(
            "{{\"id\": \"{repo_id}\", \"sha\": \"{}\", \"siblings\": [{}]}}",
            repo.commit,
            siblings.join(",")
        );
        return Response {
            status: "200 OK",
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: body.into_bytes(),
            cut_at: None,
        };
    }
    let Some((repo_id, rest)) = path
        .trim_start_matches('/')
        .split_once("/resolve/")
        .map(|(a, b)| (a.to_string(), b.to_string()))
    else {
        return error("404 Not Found", "EntryNotFound");
    };
    let Some(repo) = state.repos.get(&repo_id) else {
        return error("401 Unauthorized", "RepoNotFound");
    };
    if repo.gated && !authorized {
        return error("401 Unauthorized", "GatedRepo");
    }
    let Some((rev, file)) = rest.split_once('/') else {
        return error("404 Not Found", "EntryNotFound");
    };
    if rev != "main" && rev != repo.commit {
        return error("404 Not Found", "RevisionNotFound");
    }
    let Some((name, content)) = repo.files.iter().find(|(n, _)| n == file) else {
        return error("404 Not Found", "EntryNotFound");
    };
    let mut response_headers = vec![
        ("ETag".to_string(), format!("\"{}\"", etag(name, content))),
        ("X-Repo-Commit".to_string(), repo.commit.clone()),
        ("Accept-Ranges".to_string(), "bytes".to_string()),
    ];
    let mut body = content.clone();
    let mut status = "200 OK";
    if let Some(range) = headers.get("range").and_then(|r| r.strip_prefix("bytes=")) {
        let (start, end) = range.split_once('-').unwrap_or((range, ""));
        let start: usize = start.parse().unwrap_or(0).min(content.len());
        let end: usize = end
            .parse()
            .map(|e: usize| e + 1)
            .unwrap_or(content.len())
            .min(content.len());
        response_headers.push((
            "Content-Range".into(),
            format!("bytes {start}-{}/{}", end.saturating_sub(1), content.len()),
        ));
        body = content[start..end].to_vec();
        status = "206 Partial Content";
    }
    let cut_at = (method == "GET" && state.cut_once.remove(file)).then_some(body.len() / 2);
    Response {
        status,
        headers: response_headers,
        body,
        cut_at,
    }
}

fn write_response(mut stream: TcpStream, method: &str, response: Response) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {}\r\nContent-Length: {}\r\nConnection: close\r\n",
        response.status,
        response.body.len()
    );
    for (k, v) in &response.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    if method != "HEAD" {
        let end = response.cut_at.unwrap_or(response.body.len());
        stream.write_all(&response.body[..end])?;
    }
    stream.flush()?;
    stream.shutdown(std::net::Shutdown::Both)
}
