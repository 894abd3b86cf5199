//! Which language a text is in, with whatlang (trigram models, no data files): used to warn
//! when the input does not look like the model's source language.

use whatlang::Lang;

/// The languages dragoman names by ISO 639-1 code.
fn lang_of(code: &str) -> Option<Lang> {
    Some(match code {
        "fr" => Lang::Fra,
        "en" => Lang::Eng,
        "ru" => Lang::Rus,
        "de" => Lang::Deu,
        "es" => Lang::Spa,
        "it" => Lang::Ita,
        "pt" => Lang::Por,
        "nl" => Lang::Nld,
        _ => return None,
    })
}

/// The language `text` reliably is, in English (e.g. "English"), when it is not `expected`
/// (an ISO 639-1 code). None when the text is too short or mixed to tell, or is `expected`.
pub fn unexpected_language(text: &str, expected: &str) -> Option<&'static str> {
    let expected = lang_of(expected)?;
    let info = whatlang::detect(text)?;
    (info.is_reliable() && info.lang() != expected).then(|| info.lang().eng_name())
}

#[cfg(test)]
mod tests {
    use super::unexpected_language;

    #[test]
    fn french_passes_and_other_languages_are_named() {
        let french = "Le président a effectué une visite officielle à Ashgabat, où il a salué la neutralité du pays et rencontré plusieurs ministres.";
        let english = "The president paid an official visit to Ashgabat, where he praised the country's neutrality and met several ministers.";
        assert_eq!(unexpected_language(french, "fr"), None);
        assert_eq!(unexpected_language(english, "fr"), Some("English"));
        // Too short to tell: no warning.
        assert_eq!(unexpected_language("OK", "fr"), None);
        // A source language dragoman cannot check: no warning.
        assert_eq!(unexpected_language(english, "xx"), None);
    }
}
