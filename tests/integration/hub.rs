//! Models from a hub: download through a hub-like server on 127.0.0.1 into a temporary
//! HF_HOME, the shared cache layout, offline use, errors, concurrency and interruptions.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;

use crate::common::{fixture, greedy_reference};
use crate::hub_server::{etag, HubServer, Repo};

const COMMIT: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678";

fn hub() -> HubServer {
    let mut gated = Repo::from_dir(&fixture("fr-en"), COMMIT);
    gated.gated = true;
    let mut llama = Repo::from_dir(&fixture("fr-en"), COMMIT);
    for (name, content) in &mut llama.files {
        if name == "config.json" {
            *content =
                br#"{"model_type": "llama", "architectures": ["LlamaForCausalLM"]}"#.to_vec();
        }
    }
    HubServer::start(vec![
        (
            "test-org/opus-mt-fr-en",
            Repo::from_dir(&fixture("fr-en"), COMMIT),
        ),
        (
            "test-org/sharded",
            Repo::from_dir(&fixture("fr-en-sharded"), COMMIT),
        ),
        ("test-org/private", gated),
        ("test-org/llama", llama),
        (
            "test-org/nllb-bin",
            with_card(
                Repo::from_dir(&fixture("m2m100/nllb-spm"), COMMIT),
                "cc-by-nc-4.0",
            ),
        ),
        (
            "test-org/m2m100",
            with_card(Repo::from_dir(&fixture("m2m100/m2m100"), COMMIT), "mit"),
        ),
    ])
}

/// `repo` with a model card whose front matter names `license`, as hub model cards do.
fn with_card(mut repo: Repo, license: &str) -> Repo {
    let card =
        format!("---\nlanguage:\n- fr\nlicense: {license}\ntags:\n- translation\n---\n# A model\n");
    repo.files.push(("README.md".into(), card.into_bytes()));
    repo
}

fn dragoman(home: &Path, server: &HubServer) -> Command {
    let mut cmd = Command::cargo_bin("dragoman").unwrap();
    cmd.env("HF_HOME", home)
        .env("HF_ENDPOINT", &server.endpoint)
        .env_remove("HF_HUB_CACHE")
        .env_remove("HF_TOKEN")
        .env_remove("HF_HUB_OFFLINE");
    cmd
}

fn translate(cmd: &mut Command, model: &str, input: &str) -> assert_cmd::assert::Assert {
    cmd.args([
        "translate",
        "--model",
        model,
        "--beams",
        "1",
        "--max-new-tokens",
        "20",
    ])
    .write_stdin(format!("{input}\n"))
    .assert()
}

fn repo_dir(home: &Path, repo: &str) -> PathBuf {
    home.join("hub")
        .join(format!("models--{}", repo.replace('/', "--")))
}

#[test]
fn download_then_translate_equals_the_local_directory_and_uses_python_s_layout() {
    let server = hub();
    let home = tempfile::tempdir().unwrap();
    let (sources, targets) = greedy_reference();
    let (source, target) = (sources[0].clone(), targets[0].clone());
    translate(
        &mut dragoman(home.path(), &server),
        "test-org/opus-mt-fr-en",
        &source,
    )
    .success()
    .stdout(format!("{target}\n"));

    let repo = repo_dir(home.path(), "test-org/opus-mt-fr-en");
    assert_eq!(
        std::fs::read_to_string(repo.join("refs/main")).unwrap(),
        COMMIT
    );
    let snapshot = repo.join("snapshots").join(COMMIT);
    for name in [
        "config.json",
        "generation_config.json",
        "model.safetensors",
        "source.spm",
        "target.spm",
        "vocab.json",
    ] {
        let link =
            std::fs::read_link(snapshot.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let content = std::fs::read(fixture("fr-en").join(name)).unwrap();
        assert_eq!(
            link,
            PathBuf::from("../../blobs").join(etag(name, &content)),
            "{name}"
        );
        assert_eq!(
            std::fs::read(snapshot.join(name)).unwrap(),
            content,
            "{name}"
        );
    }
    assert!(home
        .path()
        .join("hub/.locks/models--test-org--opus-mt-fr-en")
        .is_dir());
    let leftovers: Vec<_> = std::fs::read_dir(repo.join("blobs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.contains("incomplete"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // Cached: a second run sends no request at all, and works with the server gone.
    let before = server.log().len();
    translate(
        &mut dragoman(home.path(), &server),
        "test-org/opus-mt-fr-en",
        &source,
    )
    .success();
    assert_eq!(
        server.log().len(),
        before,
        "a cached model must not touch the network"
    );
    server.stop();
    let mut offline = dragoman(home.path(), &server);
    offline.env("HF_HUB_OFFLINE", "1");
    translate(&mut offline, "test-org/opus-mt-fr-en", &source)
        .success()
        .stdout(format!("{target}\n"));
}

/// The m2m_100 family's repos as the hub has them (M2M100: vocab.json +
/// sentencepiece.bpe.model, no tokenizer.json; an NLLB with only its SentencePiece model;
/// both with .bin weights only) are fetched whole, and translate as their directories do.
#[test]
fn m2m100_and_nllb_repos_are_fetched_with_their_tokenizer_files() {
    let server = hub();
    let home = tempfile::tempdir().unwrap();
    for (repo, dir, files, licence) in [
        (
            "test-org/m2m100",
            "m2m100/m2m100",
            &["vocab.json", "sentencepiece.bpe.model", "pytorch_model.bin"][..],
            "mit",
        ),
        (
            "test-org/nllb-bin",
            "m2m100/nllb-spm",
            &[
                "sentencepiece.bpe.model",
                "tokenizer_config.json",
                "pytorch_model.bin",
            ][..],
            "cc-by-nc-4.0 (non-commercial use only)",
        ),
    ] {
        dragoman(home.path(), &server)
            .args(["models", "pull", repo])
            .assert()
            .success();
        let snapshot = repo_dir(home.path(), repo).join("snapshots").join(COMMIT);
        for name in files
            .iter()
            .chain(&["config.json", "special_tokens_map.json", "README.md"])
        {
            assert!(snapshot.join(name).is_file(), "{repo}: {name}");
        }
        let run = |model: &str| {
            let out = dragoman(home.path(), &server)
                .args(["translate", "--model", model, "--to", "ru", "--beams", "1"])
                .args(["--max-new-tokens", "20", "-q"])
                .write_stdin("Le chat dort sur le canapé.\nOù est la gare ?\n")
                .assert()
                .success();
            String::from_utf8_lossy(&out.get_output().stdout).to_string()
        };
        assert_eq!(run(repo), run(fixture(dir).to_str().unwrap()), "{repo}");
        let info = dragoman(home.path(), &server)
            .args(["models", "info", repo])
            .assert()
            .success();
        let info = String::from_utf8_lossy(&info.get_output().stdout).to_string();
        assert!(info.contains("family     m2m_100"), "{info}");
        assert!(info.contains(&format!("licence    {licence}")), "{info}");
        assert!(
            info.contains("languages, any to any") && info.contains("(Russian)"),
            "{info}"
        );
    }
}

#[test]
fn sharded_weights_are_fetched_shard_by_shard() {
    let server = hub();
    let home = tempfile::tempdir().unwrap();
    let (sources, targets) = greedy_reference();
    let (source, target) = (sources[0].clone(), targets[0].clone());
    translate(
        &mut dragoman(home.path(), &server),
        "test-org/sharded",
        &source,
    )
    .success()
    .stdout(format!("{target}\n"));
    let log = server.log();
    assert!(
        log.iter()
            .filter(|l| l.starts_with("GET") && l.contains("model-0000"))
            .count()
            >= 2,
        "{log:?}"
    );
}

#[test]
fn offline_miss_names_the_repo_and_the_fix_without_network() {
    let server = hub();
    let home = tempfile::tempdir().unwrap();
    dragoman(home.path(), &server)
        .args([
            "translate",
            "--offline",
            "--model",
            "test-org/opus-mt-fr-en",
        ])
        .write_stdin("Bonjour.\n")
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "dragoman models pull test-org/opus-mt-fr-en",
        ));
    assert!(
        server.log().is_empty(),
        "offline made requests: {:?}",
        server.log()
    );
}

#[test]
fn hub_errors_are_one_clear_line() {
    let server = hub();
    let home = tempfile::tempdir().unwrap();
    let cases = [
        ("test-org/missing", "not found on http://127.0.0.1"),
        ("test-org/opus-mt-fr-en@v9", "revision v9 not found"),
        ("test-org/private", "HF_TOKEN"),
        (
            "test-org/llama",
            "model_type \"llama\" is not supported (supported: marian, bart, mbart, m2m_100, t5, mt5)",
        ),
    ];
    for (id, message) in cases {
        let assert = dragoman(home.path(), &server)
            .args(["models", "pull", id])
            .assert()
            .code(1);
        let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
        assert!(
            stderr.contains(message) && stderr.contains(id.split('@').next().unwrap()),
            "{id}: {stderr}"
        );
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    }
    // With the token the gated repo downloads.
    dragoman(home.path(), &server)
        .env("HF_TOKEN", "secret-token")
        .args(["models", "pull", "test-org/private"])
        .assert()
        .success();
    // No network at all.
    let mut unreachable = Command::cargo_bin("dragoman").unwrap();
    unreachable
        .env("HF_HOME", home.path())
        .env("HF_ENDPOINT", "http://127.0.0.1:9")
        .env_remove("HF_HUB_CACHE")
        .env_remove("HF_HUB_OFFLINE")
        .args(["models", "pull", "test-org/other"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("cannot reach http://127.0.0.1:9"));
}

#[test]
fn two_processes_pulling_at_once_both_succeed() {
    let server = hub();
    let home = tempfile::tempdir().unwrap();
    let spawn = || {
        std::process::Command::new(assert_cmd::cargo::cargo_bin("dragoman"))
            .env("HF_HOME", home.path())
            .env("HF_ENDPOINT", &server.endpoint)
            .env_remove("HF_HUB_CACHE")
            .env_remove("HF_HUB_OFFLINE")
            .args(["models", "pull", "test-org/opus-mt-fr-en"])
            .output()
            .unwrap()
    };
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(spawn);
        let b = s.spawn(spawn);
        (a.join().unwrap(), b.join().unwrap())
    });
    assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
    assert!(b.status.success(), "{}", String::from_utf8_lossy(&b.stderr));
    let blobs = std::fs::read_dir(repo_dir(home.path(), "test-org/opus-mt-fr-en").join("blobs"))
        .unwrap()
        .count();
    assert_eq!(blobs, Repo::from_dir(&fixture("fr-en"), COMMIT).files.len());
}

#[test]
fn an_interrupted_download_is_never_used_and_the_retry_completes() {
    let server = hub();
    let home = tempfile::tempdir().unwrap();
    server.cut_next_download("model.safetensors");
    let first = dragoman(home.path(), &server)
        .args(["models", "pull", "test-org/opus-mt-fr-en"])
        .assert()
        .code(1);
    let stderr = String::from_utf8_lossy(&first.get_output().stderr).to_string();
    assert!(stderr.contains("test-org/opus-mt-fr-en"), "{stderr}");
    assert!(
        !repo_dir(home.path(), "test-org/opus-mt-fr-en")
            .join("refs/main")
            .exists(),
        "a partial snapshot was published"
    );

    let (sources, targets) = greedy_reference();
    let (source, target) = (sources[0].clone(), targets[0].clone());
    translate(
        &mut dragoman(home.path(), &server),
        "test-org/opus-mt-fr-en",
        &source,
    )
    .success()
    .stdout(format!("{target}\n"));
}

#[test]
fn a_corrupted_cached_blob_is_reported_with_its_path() {
    let server = hub();
    let home = tempfile::tempdir().unwrap();
    dragoman(home.path(), &server)
        .args(["models", "pull", "test-org/opus-mt-fr-en"])
        .assert()
        .success();
    let weights = repo_dir(home.path(), "test-org/opus-mt-fr-en")
        .join("snapshots")
        .join(COMMIT)
        .join("model.safetensors");
    let blob = std::fs::canonicalize(&weights).unwrap();
    let content = std::fs::read(&blob).unwrap();
    std::fs::write(&blob, &content[..content.len() / 3]).unwrap();
    let mut cmd = dragoman(home.path(), &server);
    cmd.env("HF_HUB_OFFLINE", "1");
    translate(&mut cmd, "test-org/opus-mt-fr-en", "Bonjour.")
        .code(1)
        .stderr(
            predicate::str::contains(weights.display().to_string())
                .and(predicate::str::contains("cannot read weights")),
        );
}

#[test]
fn models_list_path_and_rm() {
    let server = hub();
    let home = tempfile::tempdir().unwrap();
    let pulled = dragoman(home.path(), &server)
        .args(["models", "pull", "test-org/opus-mt-fr-en"])
        .assert()
        .success();
    let snapshot = repo_dir(home.path(), "test-org/opus-mt-fr-en")
        .join("snapshots")
        .join(COMMIT);
    let stdout = String::from_utf8_lossy(&pulled.get_output().stdout).to_string();
    // stderr is not a terminal here: no progress bars, no chatter.
    assert!(
        pulled.get_output().stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&pulled.get_output().stderr)
    );
    assert!(stdout.contains(&snapshot.display().to_string()), "{stdout}");

    // A failed pull of a decoder-only model leaves its config in the cache; it is not a
    // seq2seq model, so the list leaves it out.
    dragoman(home.path(), &server)
        .args(["models", "pull", "test-org/llama"])
        .assert()
        .code(1);
    assert!(repo_dir(home.path(), "test-org/llama").is_dir());
    let list = dragoman(home.path(), &server)
        .args(["models", "list"])
        .assert()
        .success();
    let listing = String::from_utf8_lossy(&list.get_output().stdout).to_string();
    assert!(
        listing.contains("Helsinki-NLP/opus-mt-fr-en") && listing.contains("Apache-2.0"),
        "{listing}"
    );
    assert!(
        listing.contains("test-org/opus-mt-fr-en") && listing.contains("marian"),
        "{listing}"
    );
    // Summarizers with their licences; the non-commercial one says so.
    let xlsum = listing
        .lines()
        .find(|l| l.contains("csebuetnlp/mT5_multilingual_XLSum"))
        .unwrap_or_else(|| panic!("{listing}"));
    assert!(
        xlsum.contains("CC-BY-NC-SA-4.0") && xlsum.contains("non-commercial"),
        "{xlsum}"
    );
    assert!(
        listing.contains("moussaKam/barthez-orangesum-abstract"),
        "{listing}"
    );
    // Translation tiers: each pair's default, and NLLB flagged as non-commercial.
    let line = |model: &str, pair: &str| {
        listing
            .lines()
            .find(|l| l.starts_with(model) && l.contains(pair))
            .unwrap_or_else(|| panic!("{model} {pair}: {listing}"))
            .to_string()
    };
    assert!(line("Helsinki-NLP/opus-mt-fr-en ", "fr→en").contains("(fast, default)"));
    assert!(line("Helsinki-NLP/opus-mt-tc-big-fr-en", "fr→en").contains("(best)"));
    assert!(line("Helsinki-NLP/opus-mt-tc-big-fr-zle", "fr→ru").contains("(best, default)"));
    let nllb = line("facebook/nllb-200-distilled-600M", "fr→ru");
    assert!(
        nllb.contains("CC-BY-NC-4.0") && nllb.contains("non-commercial"),
        "{nllb}"
    );

    dragoman(home.path(), &server)
        .args(["models", "path", "test-org/opus-mt-fr-en"])
        .assert()
        .success()
        .stdout(format!("{}\n", snapshot.display()));
    // Global flags are taken after the subcommand too (issue 16: `models pull ID -q`).
    dragoman(home.path(), &server)
        .args([
            "models",
            "path",
            "test-org/opus-mt-fr-en",
            "--offline",
            "-q",
        ])
        .assert()
        .success()
        .stdout(format!("{}\n", snapshot.display()));
    dragoman(home.path(), &server)
        .args(["models", "pull", "test-org/opus-mt-fr-en", "-q"])
        .assert()
        .success()
        .stderr("");
    dragoman(home.path(), &server)
        .args(["models", "rm", "test-org/opus-mt-fr-en"])
        .assert()
        .success();
    assert!(!repo_dir(home.path(), "test-org/opus-mt-fr-en").exists());
    dragoman(home.path(), &server)
        .args(["models", "path", "test-org/opus-mt-fr-en"])
        .assert()
        .code(1);
}
