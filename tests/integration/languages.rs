//! Languages end to end: `--to`/`--from` in every form a user writes them, mapped to the
//! model's own tokens; a language the model lacks; `--quality` tiers.

use predicates::prelude::*;

use crate::cli::dragoman;
use crate::common::{expected, fixture};

/// The m2m100 fixture's greedy references into Russian, one sentence per line.
fn russian_reference(name: &str) -> (String, String) {
    let e = expected(name);
    let case = e
        .cases
        .iter()
        .find(|c| c.name == "greedy_ru" && !c.batched)
        .unwrap();
    // The CLI cuts lines into sentences: the reference holds for lines of one sentence.
    let single: Vec<usize> = (0..e.sentences.len())
        .filter(|&i| dragoman::text::split_sentences(&e.sentences[i]).len() == 1)
        .collect();
    assert!(single.len() >= 4, "{name}: {single:?}");
    let lines = |texts: Vec<&String>| texts.iter().map(|t| format!("{t}\n")).collect::<String>();
    (
        lines(single.iter().map(|&i| &e.sentences[i]).collect()),
        lines(single.iter().map(|&i| &case.outputs[i].text).collect()),
    )
}

#[test]
fn every_form_of_a_code_gives_transformers_translation() {
    for (name, codes) in [
        ("m2m100/m2m100", &["ru", "rus", "__ru__", "rus_Cyrl"][..]),
        ("m2m100/nllb", &["ru", "rus", "rus_Cyrl"][..]),
    ] {
        let (input, reference) = russian_reference(name);
        for code in codes {
            dragoman()
                .args(["translate", "--model"])
                .arg(fixture(name))
                .args([
                    "--to",
                    code,
                    "--from",
                    "fra",
                    "--beams",
                    "1",
                    "--max-new-tokens",
                    "20",
                ])
                .write_stdin(input.clone())
                .assert()
                .success()
                .stdout(reference.clone());
        }
    }
}

#[test]
fn json_names_the_target_as_the_model_does() {
    let out = dragoman()
        .args(["translate", "--model"])
        .arg(fixture("m2m100/nllb"))
        .args([
            "--to",
            "ru",
            "--format",
            "json",
            "--beams",
            "1",
            "--max-new-tokens",
            "5",
        ])
        .write_stdin("Merci !\n")
        .assert()
        .success();
    let json: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(json[0]["to"], "rus_Cyrl", "{json}");
    assert_eq!(
        json[0]["paragraphs"][0]["sentences"][0]["source"],
        "Merci !"
    );
}

#[test]
fn a_language_the_model_lacks_is_one_line_listing_its_codes() {
    let out = dragoman()
        .args(["translate", "--model"])
        .arg(fixture("m2m100/m2m100"))
        .args(["--to", "tlh"])
        .write_stdin("Merci !\n")
        .assert()
        .code(1);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("has no language \"tlh\"") && stderr.contains("en, es, et"),
        "{stderr}"
    );
    // A model for one pair: another target is refused the same way.
    dragoman()
        .args(["translate", "--model"])
        .arg(fixture("fr-en"))
        .args(["--to", "ru"])
        .write_stdin("Merci !\n")
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "translates into en only, not \"ru\"",
        ));
}

#[test]
fn quality_picks_the_tier_and_refuses_a_named_model() {
    // Offline with an empty cache: the error names the model the tier picked.
    for (to, quality, model) in [
        ("ru", "fast", "Helsinki-NLP/opus-mt-fr-ru"),
        ("ru", "best", "Helsinki-NLP/opus-mt-tc-big-fr-zle"),
        ("rus", "best", "Helsinki-NLP/opus-mt-tc-big-fr-zle"),
        ("en", "best", "Helsinki-NLP/opus-mt-tc-big-fr-en"),
    ] {
        dragoman()
            .args(["translate", "--to", to, "--quality", quality])
            .write_stdin("Merci !\n")
            .assert()
            .code(1)
            .stderr(predicate::str::contains(model));
    }
    dragoman()
        .args(["translate", "--quality", "best", "--model"])
        .arg(fixture("fr-en"))
        .write_stdin("Merci !\n")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--quality"));
    dragoman()
        .args(["translate", "--quality", "good"])
        .assert()
        .code(2);
}
