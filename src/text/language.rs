//! Which language a text is in, with whatlang (trigram models, no data files): used to warn
//! when the input does not look like the model's source language.

use whatlang::Lang;

/// The language a code names (any form `languages::find` takes), as whatlang knows it.
fn lang_of(code: &str) -> Option<Lang> {
    Lang::from_code(crate::languages::iso_639_3(code))
}

/// The language `text` reliably is, in English (e.g. "English"), when it is not `expected`
/// (any code `languages::find` takes). None when the text is too short or mixed to tell, or is `expected`.
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
        // Any form of the code; a source language whatlang does not know: no warning.
        assert_eq!(unexpected_language(english, "fra_Latn"), Some("English"));
        assert_eq!(unexpected_language(english, "eng"), None);
        assert_eq!(unexpected_language(english, "xx"), None);
    }
}
