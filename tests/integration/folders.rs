//! `translate --out-dir` (and `-r`): one output per input mirroring the tree, outputs only,
//! existing ones kept unless --force, a bad file reported while the others go on, Ctrl-C
//! leaving no partial file.

use std::path::{Path, PathBuf};

use predicates::prelude::*;

use crate::cli::dragoman;
use crate::common::{fixture, greedy_reference};

const GREEDY: [&str; 4] = ["--beams", "1", "--max-new-tokens", "20"];

fn translate_into(out: &Path) -> assert_cmd::Command {
    let mut cmd = dragoman();
    cmd.arg("translate")
        .arg("--model")
        .arg(fixture("fr-en"))
        .args(GREEDY)
        .arg("--out-dir")
        .arg(out);
    cmd
}

/// Every file under `dir`, relative, sorted.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    fn walk(root: &Path, dir: &Path, found: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, found);
            } else {
                found.push(path.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    let mut found = Vec::new();
    if dir.exists() {
        walk(dir, dir, &mut found);
    }
    found.sort();
    found
}

#[test]
fn out_dir_mirrors_the_tree_and_holds_only_the_outputs() {
    let (sources, targets) = greedy_reference();
    let root = tempfile::tempdir().unwrap();
    let input = root.path().join("articles");
    std::fs::create_dir_all(input.join("2025/12")).unwrap();
    std::fs::create_dir_all(input.join(".git")).unwrap();
    std::fs::write(
        input.join("a.txt"),
        format!("{}\n\n{}\n", sources[0], sources[1]),
    )
    .unwrap();
    std::fs::write(
        input.join("2025/12/b.md"),
        format!("{}\n\n```\n{}\n```\n", sources[2], sources[4]),
    )
    .unwrap();
    std::fs::write(input.join("2025/12/photo.jpg"), b"\xff\xd8\xff").unwrap();
    std::fs::write(input.join(".git/HEAD"), "ref: main\n").unwrap();
    std::fs::write(input.join("empty.txt"), "").unwrap();
    let out = root.path().join("out");

    translate_into(&out)
        .arg("-r")
        .arg(&input)
        .assert()
        .success();
    assert_eq!(
        files_under(&out),
        [
            PathBuf::from("2025/12/b.en.md"),
            PathBuf::from("a.en.txt"),
            PathBuf::from("empty.en.txt"),
        ]
    );
    assert_eq!(
        std::fs::read_to_string(out.join("a.en.txt")).unwrap(),
        format!("{}\n\n{}\n", targets[0], targets[1])
    );
    // Markdown: the code block is kept as it is.
    assert_eq!(
        std::fs::read_to_string(out.join("2025/12/b.en.md")).unwrap(),
        format!("{}\n\n```\n{}\n```\n", targets[2], sources[4])
    );
    assert_eq!(
        std::fs::read_to_string(out.join("empty.en.txt")).unwrap(),
        ""
    );

    // Run again with the output directory inside the input tree: earlier outputs are not
    // inputs, and existing outputs are skipped.
    let inner = input.join("translated");
    translate_into(&inner)
        .arg("-r")
        .arg(&input)
        .assert()
        .success();
    translate_into(&inner)
        .arg("-r")
        .arg(&input)
        .assert()
        .success()
        .stderr(predicate::str::contains("exists; skipped"));
    assert_eq!(files_under(&inner).len(), 3, "{:?}", files_under(&inner));

    // A directory needs -r.
    translate_into(&out)
        .arg(&input)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("is a directory (pass -r"));
}

#[test]
fn existing_outputs_are_kept_unless_forced() {
    let (sources, targets) = greedy_reference();
    let root = tempfile::tempdir().unwrap();
    let input = root.path().join("a.txt");
    std::fs::write(&input, format!("{}\n", sources[3])).unwrap();
    let out = root.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("a.en.txt"), "earlier work\n").unwrap();

    translate_into(&out)
        .arg(&input)
        .assert()
        .success()
        .stderr(predicate::str::contains("a.en.txt: exists; skipped"));
    assert_eq!(
        std::fs::read_to_string(out.join("a.en.txt")).unwrap(),
        "earlier work\n"
    );
    translate_into(&out)
        .arg("--force")
        .arg(&input)
        .assert()
        .success();
    assert_eq!(
        std::fs::read_to_string(out.join("a.en.txt")).unwrap(),
        format!("{}\n", targets[3])
    );
}

#[test]
fn a_bad_file_is_reported_and_the_others_are_written() {
    let (sources, targets) = greedy_reference();
    let root = tempfile::tempdir().unwrap();
    let good = root.path().join("good.txt");
    let bad = root.path().join("bad.txt");
    std::fs::write(&good, format!("{}\n", sources[0])).unwrap();
    std::fs::write(&bad, b"Bonjour\n\xe9t\xe9\n").unwrap();
    let out = root.path().join("out");
    translate_into(&out)
        .arg(&bad)
        .arg(&good)
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("bad.txt: invalid UTF-8 at byte 8")
                .and(predicate::str::contains("1 of 2 inputs failed")),
        );
    assert_eq!(files_under(&out), [PathBuf::from("good.en.txt")]);
    assert_eq!(
        std::fs::read_to_string(out.join("good.en.txt")).unwrap(),
        format!("{}\n", targets[0])
    );
}

/// SIGINT in the middle of a long folder run: exit 130, every output present is complete,
/// and no temporary file is left behind.
#[test]
fn ctrl_c_leaves_only_complete_outputs() {
    let (sources, _) = greedy_reference();
    let root = tempfile::tempdir().unwrap();
    let input = root.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    let lines = 2_000;
    let text: String = (0..lines)
        .map(|i| format!("{}\n", sources[i % sources.len()]))
        .collect();
    for i in 0..20 {
        std::fs::write(input.join(format!("doc{i:02}.txt")), &text).unwrap();
    }
    let out = root.path().join("out");
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("dragoman"))
        .env("HF_HUB_OFFLINE", "1")
        .args(["translate", "--model"])
        .arg(fixture("fr-en"))
        .args(GREEDY)
        .arg("-r")
        .arg(&input)
        .arg("--out-dir")
        .arg(&out)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the first output is complete, then interrupt the second.
    let started = std::time::Instant::now();
    while !out.join("doc00.en.txt").exists() {
        assert!(
            started.elapsed().as_secs() < 120,
            "no output after 2 minutes"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{status:?}");
    let written = files_under(&out);
    assert!(!written.is_empty() && written.len() < 20, "{written:?}");
    for file in written {
        let name = file.to_string_lossy().into_owned();
        assert!(name.ends_with(".en.txt"), "left behind: {name}");
        let content = std::fs::read_to_string(out.join(&file)).unwrap();
        assert_eq!(content.lines().count(), lines, "{name} is partial");
    }
}
