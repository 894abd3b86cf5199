//! Sentence segmentation for French text: Unicode (UAX #29) boundaries from ICU4X, with
//! French rules on top.
//!
//! # Why this shape
//!
//! The script-neutral core comes from [`icu_segmenter`]'s `SentenceSegmenter`, the Unicode
//! consortium's own implementation of the UAX #29 sentence boundaries. It knows the
//! terminators of every script (`。`, `।`, `؟`, `։`, …) and paragraph separators, and runs in
//! linear time. (`unicode-segmentation`'s `split_sentence_bounds`, already in the dependency
//! tree, was tried first and rejected: its SB8 look-ahead is quadratic, as its source says —
//! 40 000 spaces after a period take 14 s in release mode — and a 1 MB line must stay fast.)
//!
//! UAX #29 alone is wrong for French in both directions, so French rules decide every
//! boundary that follows a French terminator (`.` `!` `?` `…` and their runs `?!`, `...`):
//!
//! * it splits after abbreviations and initials followed by a capital (`M. Dupont`,
//!   `J. K. Rowling`, `av. J.-C. à`, `cf. Chapitre`); French rules veto these;
//! * it splits before a closing `»` typeset after a space (`« Tu viens ? » demanda-t-elle`,
//!   which must stay whole); French rules move the quote back into the sentence and then look
//!   at what follows it;
//! * it never splits after `…` (not a UAX terminator) nor before a dialogue dash (`—` and `–`
//!   are `SContinue`); French rules add those boundaries;
//! * it splits after `?`/`!` with no space (`http://x.fr/?q=1`); French rules demand white
//!   space between sentences.
//!
//! Candidate boundaries are the union of the UAX #29 ones and the positions after every run
//! of French terminators; each is normalised to a gap (end of one sentence, start of the
//! next) and judged. UAX #29 boundaries after other scripts' terminators or after paragraph
//! separators are kept as they are.
//!
//! No rule data is bundled from elsewhere: the abbreviation lists below are written for
//! this crate. The `srx` crate (SRX 2.0 rules) was tried with the LanguageTool `segment.srx`
//! it ships (LGPL-2.1 data): its French rules still split after `M.`, `Ch.`, `chap.` and
//! `av. J.-C.` and before a spaced `»`, and the crate is unmaintained since 2021. ICU4X's
//! compiled data is under the Unicode-3.0 licence (permissive, OSI-approved).
//!
//! # The French rules
//!
//! A boundary after a terminator run needs white space, then (optionally) closing quotes or
//! brackets, then white space, then a plausible sentence start: an uppercase or caseless
//! letter, a digit, an opening quote or bracket (`«` `"` `“` `(` `[` `¿` `¡`), or a dialogue
//! dash (`—`, `–`, or `-` followed by a space). A lowercase continuation never splits
//! (`etc. et`, `Il pleut... mais`, `« Bonjour. » dit-il`). The sentence before it must hold a
//! letter or digit (`... Et puis` stays whole). A single `.` is further checked against
//! titles (`M.`, `MM.`, `Dr.`, `Mme.`, `St.` …, never a sentence end), initials (`J.`, `Ch.`,
//! `J.-C.` — except `av./apr. J.-C.`, which may end a sentence), abbreviations that never end
//! one (`cf.`, `c.-à-d.`, `av.`, `apr.`, `éd.`, `env.`, `p. ex.` …) and abbreviations that
//! continue before a number (`p. 12`, `chap. IV`, `art. 3`, `12 janv. 2025`). An ellipsis
//! right after an opening bracket or quote (`[...]`, `(…)`, `« … »`) is an elision, not an end.
//!
//! Numbers, dates, URLs and e-mail addresses never split since they hold no white space
//! after their periods.
//!
//! Known limits: a sentence that ends on a single capital letter or a title
//! (`la vitamine C. Elle`) is not split, nor one ending on a word that doubles as an
//! abbreviation before a number (`Ils étaient sept. 3 sont partis.`); dotted acronyms of three
//! letters or more (`U.S.A.`) may end a sentence, so `la S.N.C.F. Paris` splits; a sentence
//! ending inside quotes is split there when the quote goes on with a capital
//! (`« Viens ! Je t'attends. »` gives two sentences); a line break character inside a line
//! (`\r`, U+2028) always ends a sentence when no French terminator precedes it.

use std::ops::Range;

use icu_segmenter::options::SentenceBreakInvariantOptions;
use icu_segmenter::SentenceSegmenter;

/// Byte ranges of the sentences of `text`, in order.
///
/// Every range is non-empty, on char boundaries and trimmed (no white space at either end);
/// the text between two ranges, and before the first and after the last, is white space
/// only (possibly empty, e.g. between CJK sentences). All non-white-space text is covered.
/// Empty or white-space-only text gives no range. Linear time in `text.len()`.
pub fn split_sentences(text: &str) -> Vec<Range<usize>> {
    let content = trim_range(text, 0..text.len());
    if content.is_empty() {
        return Vec::new();
    }

    // Candidate positions, ascending. `true` marks UAX #29 candidates.
    let mut candidates: Vec<(usize, bool)> =
        SentenceSegmenter::new(SentenceBreakInvariantOptions::default())
            .segment_str(text)
            .filter(|&b| b > content.start && b < content.end)
            .map(|b| (b, true))
            .collect();
    candidates.extend(french_terminator_run_ends(text, content.clone()).map(|b| (b, false)));
    candidates.sort_unstable();

    let mut sentences = Vec::new();
    let mut sentence_start = content.start;
    // Start of the last candidate gap looked at: scans backwards never go below it, and a
    // candidate before it lies inside a gap already judged.
    let mut floor = content.start;
    let mut alnum = AlnumTracker::new(content.start);

    let mut judged_any = false;
    for (pos, from_uax) in candidates {
        if pos < floor {
            continue; // inside a gap already judged
        }
        let Some(gap) = gap_at(text, pos, floor) else {
            break; // only white space and closers up to the end: no further sentence
        };
        if judged_any && gap.start <= floor {
            continue; // the same gap as the previous candidate
        }
        let previous_floor = floor;
        floor = gap.start;
        judged_any = true;
        if gap.end <= sentence_start {
            continue;
        }
        let accept = match terminator_run_before(text, gap.end, previous_floor.max(sentence_start))
        {
            Some(run) => {
                gap.start > gap.end
                    && alnum.seen_between(text, sentence_start, run.start)
                    && french_boundary(text, run, gap.start)
            }
            // After another script's terminator or a paragraph separator: UAX #29 decides.
            None => from_uax && alnum.seen_between(text, sentence_start, gap.end),
        };
        if accept {
            sentences.push(sentence_start..gap.end);
            sentence_start = gap.start;
        }
    }
    sentences.push(sentence_start..content.end);
    sentences
}

/// The gap found at a candidate position: the previous sentence ends at `end` (after its
/// closing quotes and brackets), the next one starts at `start`; `text[end..start]` is white
/// space only.
struct Gap {
    end: usize,
    start: usize,
}

/// Characters that end a French sentence, alone or in runs.
fn is_terminator(c: char) -> bool {
    matches!(c, '.' | '!' | '?' | '…' | '‼' | '‽' | '⁇' | '⁈' | '⁉')
}

/// Closing quotes and brackets that can never open.
fn is_closer(c: char) -> bool {
    matches!(c, '»' | '›' | '”' | ')' | ']' | '}')
}

/// Quotes used both ways (and the apostrophe).
fn is_ambiguous_quote(c: char) -> bool {
    matches!(c, '"' | '\'' | '’')
}

fn is_opener(c: char) -> bool {
    matches!(
        c,
        '«' | '‹' | '“' | '‘' | '„' | '‚' | '"' | '\'' | '(' | '[' | '{' | '¿' | '¡'
    )
}

fn is_dash(c: char) -> bool {
    matches!(c, '—' | '–' | '―')
}

/// End positions of maximal runs of terminators inside `range` (white space must follow for
/// them to matter, which [`gap_at`] checks).
fn french_terminator_run_ends(text: &str, range: Range<usize>) -> impl Iterator<Item = usize> + '_ {
    let slice = &text[range.clone()];
    let base = range.start;
    let mut iter = slice.char_indices().peekable();
    std::iter::from_fn(move || {
        while let Some((i, c)) = iter.next() {
            if !is_terminator(c) {
                continue;
            }
            let mut end = i + c.len_utf8();
            while let Some(&(j, d)) = iter.peek() {
                if !is_terminator(d) {
                    break;
                }
                end = j + d.len_utf8();
                iter.next();
            }
            return Some(base + end);
        }
        None
    })
}

/// Normalises a candidate position into a gap: white space before `pos` (not below `floor`)
/// and after it is skipped, and closing quotes/brackets after it are given to the sentence
/// that ends. `None` when nothing but white space and closers follows.
fn gap_at(text: &str, pos: usize, floor: usize) -> Option<Gap> {
    let before = &text[floor..pos];
    let mut end = floor + before.trim_end().len();
    let mut i = pos;
    let mut saw_space = end < pos;
    while let Some(c) = text[i..].chars().next() {
        if c.is_whitespace() {
            saw_space = true;
            i += c.len_utf8();
            continue;
        }
        let closes = if is_closer(c) {
            true
        } else if is_ambiguous_quote(c) {
            // Attached to what precedes, or standing before white space/punctuation: closing.
            let next = text[i + c.len_utf8()..].chars().next();
            !saw_space || next.is_none_or(|n| !n.is_alphanumeric())
        } else {
            false
        };
        if !closes {
            break;
        }
        i += c.len_utf8();
        end = i;
        saw_space = false;
    }
    if i >= text.len() {
        return None;
    }
    Some(Gap { end, start: i })
}

/// If `text[..end]`, after stripping closing quotes/brackets and white space (not below
/// `floor`), ends with a run of French terminators, that run's byte range.
fn terminator_run_before(text: &str, end: usize, floor: usize) -> Option<Range<usize>> {
    let region = &text[floor..end];
    let mut chars = region.char_indices().rev().peekable();
    // Closers and white space between them ("? »").
    while let Some(&(_, c)) = chars.peek() {
        if c.is_whitespace() || is_closer(c) || is_ambiguous_quote(c) {
            chars.next();
        } else {
            break;
        }
    }
    let mut run: Option<Range<usize>> = None;
    while let Some(&(i, c)) = chars.peek() {
        if !is_terminator(c) {
            break;
        }
        let stop = run.as_ref().map_or(floor + i + c.len_utf8(), |r| r.end);
        run = Some(floor + i..stop);
        chars.next();
    }
    run
}

/// Keeps a monotone forward scan for "is there a letter or digit between a and b".
struct AlnumTracker {
    scanned_to: usize,
    last_alnum: Option<usize>,
}

impl AlnumTracker {
    fn new(start: usize) -> Self {
        Self {
            scanned_to: start,
            last_alnum: None,
        }
    }

    /// Whether `text[from..to]` holds a letter or digit; calls must come with non-decreasing
    /// `to` (the scan never goes back), which keeps the whole segmentation linear.
    fn seen_between(&mut self, text: &str, from: usize, to: usize) -> bool {
        if to < self.scanned_to {
            // Not reached by the segmentation's calls; correct, if not linear.
            return text[from.min(to)..to].chars().any(char::is_alphanumeric);
        }
        if to > self.scanned_to {
            for (i, c) in text[self.scanned_to..to].char_indices() {
                if c.is_alphanumeric() {
                    self.last_alnum = Some(self.scanned_to + i);
                }
            }
            self.scanned_to = to;
        }
        self.last_alnum.is_some_and(|i| i >= from && i < to)
    }
}

/// Decides a boundary after the terminator run `run`, with the next sentence at `start`.
fn french_boundary(text: &str, run: Range<usize>, start: usize) -> bool {
    let next = &text[start..];
    if !plausible_start(next) {
        return false;
    }
    let run_text = &text[run.clone()];
    let is_ellipsis = run_text.contains('…') || run_text.contains("..");
    let strong = run_text.chars().any(|c| c != '.' && c != '…');
    if is_ellipsis && !strong && follows_opener(text, run.start) {
        return false; // "[...]", "(…)", "« ... »": an elision
    }
    if run_text == "." {
        return match abbreviation_before(text, run.start) {
            Abbrev::None => true,
            Abbrev::Always => false,
            Abbrev::BeforeNumber => !starts_with_number(next),
        };
    }
    true
}

/// Whether the next sentence may start with `next`.
fn plausible_start(next: &str) -> bool {
    let mut chars = next.chars();
    let Some(c) = chars.next() else { return false };
    if c.is_lowercase() {
        return false;
    }
    if c.is_alphabetic() || c.is_numeric() || is_dash(c) {
        return true; // uppercase, titlecase or caseless letters, digits, dialogue dashes
    }
    if c == '-' {
        return chars.next().is_some_and(char::is_whitespace);
    }
    if c == '…' || next.starts_with("...") {
        // "Non. … Et puis." — a sentence opened by an ellipsis, when a capital follows.
        let rest = next.trim_start_matches(['…', '.']).trim_start();
        return rest
            .chars()
            .next()
            .is_some_and(|c| c.is_uppercase() || is_dash(c) || c == '«');
    }
    is_opener(c)
}

/// Whether an opening bracket or quote (then optional white space) comes right before `pos`.
fn follows_opener(text: &str, pos: usize) -> bool {
    let before = window_before(text, pos, 16).trim_end();
    before
        .chars()
        .next_back()
        .is_some_and(|c| matches!(c, '(' | '[' | '{' | '«' | '“' | '‹' | '"' | '\''))
}

/// The tail of `text[..pos]`, at most `max` bytes long, cut on a char boundary.
fn window_before(text: &str, pos: usize, max: usize) -> &str {
    let mut from = pos.saturating_sub(max);
    while !text.is_char_boundary(from) {
        from += 1;
    }
    &text[from..pos]
}

#[derive(Debug, PartialEq, Eq)]
enum Abbrev {
    /// Not an abbreviation: the period may end the sentence.
    None,
    /// Never ends a sentence (titles, initials, `cf.`).
    Always,
    /// Does not end a sentence before a number (`p. 12`, `chap. IV`).
    BeforeNumber,
}

/// Titles before a name, matched with their case.
const TITLES: &[&str] = &[
    "M", "MM", "Mme", "Mmes", "Mlle", "Mlles", "Mr", "Mrs", "Dr", "Drs", "Pr", "Prs", "Prof", "Me",
    "Mgr", "St", "Ste", "Sts", "Stes", "Cie", "Vve", "Gal", "Gén", "Col", "Cdt", "Lt", "Sgt",
    // Initials of two letters: Ch. (Charles), Th. (Théophile), Ph. (Philippe).
    "Ch", "Th", "Ph", "Chr",
];

/// Abbreviations that never end a sentence, matched with a lowercased first letter.
const ALWAYS: &[&str] = &[
    "cf", "c.-à-d", "c-à-d", "av", "apr", "bd", "boul", "coll", "éd", "env", "trad", "réf", "tél",
    "vs", "i.e", "e.g", "p.ex", "resp", "dir", "hab", "fasc", "suppl",
];

/// Abbreviations that do not end a sentence before a number, matched with a lowercased
/// first letter.
const BEFORE_NUMBER: &[&str] = &[
    "p", "pp", "t", "vol", "chap", "ch", "art", "fig", "n", "no", "nos", "s", "l", "v", "éq",
    "ann", "ex", "sq", "suiv", "tab", "janv", "févr", "fév", "avr", "juil", "juill", "sept", "oct",
    "nov", "déc",
];

/// Classifies the word that ends right before the period at `dot`.
fn abbreviation_before(text: &str, dot: usize) -> Abbrev {
    // The word: letters, inner periods and hyphens ("c.-à-d", "J.-C"), at most 24 bytes.
    let window = window_before(text, dot, 24);
    let word_len = window
        .chars()
        .rev()
        .take_while(|&c| c.is_alphabetic() || c == '.' || c == '-')
        .map(char::len_utf8)
        .sum::<usize>();
    if word_len == window.len() && window.len() < dot {
        // The word may go on beyond the window: too long to be an abbreviation, unless
        // the window reaches the start of the text.
        let before_window = &text[..dot - window.len()];
        if before_window
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphabetic() || c == '.' || c == '-')
        {
            return Abbrev::None;
        }
    }
    let word_start = dot - word_len;
    let word = text[word_start..dot].trim_start_matches(['.', '-']);
    if word.is_empty() || word.ends_with('-') {
        return Abbrev::None;
    }
    // "3M." or "100m.": a unit or a code glued to a number, not an abbreviation.
    if text[..word_start]
        .chars()
        .next_back()
        .is_some_and(char::is_numeric)
    {
        return Abbrev::None;
    }
    if TITLES.contains(&word) || is_initials(word) {
        if word == "J.-C" && preceded_by_era_abbreviation(text, word_start) {
            return Abbrev::None; // "en 44 av. J.-C. César …" may end there
        }
        return Abbrev::Always;
    }
    let lowered = lowercase_first(word);
    if ALWAYS.contains(&lowered.as_str()) {
        return Abbrev::Always;
    }
    if lowered == "ex" && preceded_by_par(text, word_start) {
        return Abbrev::Always; // "p. ex.", "par ex."
    }
    if BEFORE_NUMBER.contains(&lowered.as_str()) {
        return Abbrev::BeforeNumber;
    }
    Abbrev::None
}

/// Initials: one capital ("J"), or two joined by periods and hyphens ("J.-C", "J.-P", "J.K").
/// Three or more ("U.S.A", "S.N.C.F") are acronyms that may end a sentence.
fn is_initials(word: &str) -> bool {
    let parts: Vec<&str> = word.split(['.', '-']).filter(|p| !p.is_empty()).collect();
    if parts.is_empty() || parts.len() > 2 {
        return false;
    }
    parts.iter().all(|p| {
        let mut chars = p.chars();
        chars.next().is_some_and(char::is_uppercase) && chars.next().is_none()
    })
}

fn preceded_by_era_abbreviation(text: &str, word_start: usize) -> bool {
    let before = window_before(text, word_start, 16).trim_end();
    ends_with_word(before, "av.") || ends_with_word(before, "apr.")
}

fn preceded_by_par(text: &str, word_start: usize) -> bool {
    let before = window_before(text, word_start, 16).trim_end();
    ends_with_word(before, "p.")
        || ends_with_word(before, "P.")
        || ends_with_word(before, "par")
        || ends_with_word(before, "Par")
}

/// `text` ends with `word`, and `word` is not the tail of a longer word.
fn ends_with_word(text: &str, word: &str) -> bool {
    text.strip_suffix(word)
        .is_some_and(|rest| !rest.chars().next_back().is_some_and(char::is_alphanumeric))
}

fn lowercase_first(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A digit, or a Roman numeral standing as a word ("IV", "XII").
fn starts_with_number(next: &str) -> bool {
    match next.chars().next() {
        Some(c) if c.is_numeric() => true,
        Some(c) if is_roman(c) => {
            // The numeral must be the whole word: "IV" but not "Il" or "Victor".
            let numeral_len = next.chars().take(9).take_while(|&c| is_roman(c)).count();
            numeral_len <= 8
                && !next
                    .chars()
                    .nth(numeral_len)
                    .is_some_and(char::is_alphanumeric)
        }
        _ => false,
    }
}

fn is_roman(c: char) -> bool {
    matches!(c, 'I' | 'V' | 'X' | 'L' | 'C' | 'D' | 'M')
}

/// `range` of `text` without white space at either end.
pub(crate) fn trim_range(text: &str, range: Range<usize>) -> Range<usize> {
    let slice = &text[range.clone()];
    let start = range.start + (slice.len() - slice.trim_start().len());
    let end = range.start + slice.trim_end().len();
    if start >= end {
        return start..start;
    }
    start..end
}

/// Checks the segmentation contract of `ranges` over `text`: in order, non-empty, on char
/// boundaries, trimmed, gaps white space only, all non-white-space text covered.
#[cfg(test)]
pub(crate) fn assert_partition(text: &str, ranges: &[Range<usize>]) {
    let mut covered_to = 0;
    for r in ranges {
        assert!(r.start < r.end, "empty range {r:?} in {text:?}");
        assert!(
            r.start >= covered_to,
            "overlap or disorder at {r:?} in {text:?}"
        );
        assert!(r.end <= text.len(), "range {r:?} past the end of {text:?}");
        assert!(
            text.is_char_boundary(r.start) && text.is_char_boundary(r.end),
            "{r:?} not on char boundaries"
        );
        let piece = &text[r.clone()];
        assert_eq!(piece, piece.trim(), "untrimmed range {r:?} in {text:?}");
        let gap = &text[covered_to..r.start];
        assert!(
            gap.chars().all(char::is_whitespace),
            "non-white-space gap {gap:?} in {text:?}"
        );
        covered_to = r.end;
    }
    let tail = &text[covered_to..];
    assert!(
        tail.chars().all(char::is_whitespace),
        "uncovered tail {tail:?} in {text:?}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sentences(text: &str) -> Vec<&str> {
        let ranges = split_sentences(text);
        assert_partition(text, &ranges);
        ranges.into_iter().map(|r| &text[r]).collect()
    }

    /// `text` comes out as exactly `expected`.
    #[track_caller]
    fn check(text: &str, expected: &[&str]) {
        assert_eq!(sentences(text), expected, "segmenting {text:?}");
    }

    /// `text` stays one sentence.
    #[track_caller]
    fn whole(text: &str) {
        check(text, &[text.trim()]);
    }

    #[test]
    fn terminators_and_runs() {
        check(
            "Il pleut. Le vent souffle.",
            &["Il pleut.", "Le vent souffle."],
        );
        check(
            "Tu viens ? Oui ! Enfin.",
            &["Tu viens ?", "Oui !", "Enfin."],
        );
        check("Tu viens? Oui! Enfin.", &["Tu viens?", "Oui!", "Enfin."]);
        check(
            "Quoi ?! Vraiment ?! Oui.",
            &["Quoi ?!", "Vraiment ?!", "Oui."],
        );
        check("Quoi !!! Non...", &["Quoi !!!", "Non..."]);
        check(
            "Il hésita... Puis il partit.",
            &["Il hésita...", "Puis il partit."],
        );
        check(
            "Il hésita… Puis il partit.",
            &["Il hésita…", "Puis il partit."],
        );
        check("Quoi ? ! Non.", &["Quoi ? !", "Non."]);
        check("Quoi ‽ Non ⁉ Si.", &["Quoi ‽", "Non ⁉", "Si."]);
    }

    #[test]
    fn french_spacing_before_punctuation() {
        // Narrow no-break space (U+202F) and no-break space (U+00A0) before ? ! and inside « ».
        check(
            "Tu viens\u{202f}? Oui\u{a0}! Bien.",
            &["Tu viens\u{202f}?", "Oui\u{a0}!", "Bien."],
        );
        check(
            "«\u{a0}Bonjour.\u{a0}» dit-il. Puis il partit.",
            &["«\u{a0}Bonjour.\u{a0}» dit-il.", "Puis il partit."],
        );
        check("Fin.\u{a0}\u{a0}Début.", &["Fin.", "Début."]);
        check("Fin.\t\tDébut.  Suite.", &["Fin.", "Début.", "Suite."]);
    }

    #[test]
    fn five_sentences_on_five_lines_stay_apart() {
        for line in [
            "Bonjour.",
            "Comment allez-vous ?",
            "Très bien !",
            "Et vous…",
            "À demain.",
        ] {
            check(line, &[line]);
        }
    }

    #[test]
    fn plausible_sentence_starts() {
        check(
            "Il a 3 ans. 4 enfants jouent.",
            &["Il a 3 ans.", "4 enfants jouent."],
        );
        check(
            "Fin. « Bonjour », dit-il.",
            &["Fin.", "« Bonjour », dit-il."],
        );
        check(
            "Fin. \"Bonjour\", dit-il.",
            &["Fin.", "\"Bonjour\", dit-il."],
        );
        check("Fin. (Voir annexe.)", &["Fin.", "(Voir annexe.)"]);
        check(
            "Il part. Écoute-moi. À bientôt. Ça va.",
            &["Il part.", "Écoute-moi.", "À bientôt.", "Ça va."],
        );
        check("Fin. ¿Qué? ¡Sí!", &["Fin.", "¿Qué?", "¡Sí!"]);
        // No split before a lowercase word, a symbol or punctuation.
        whole("Il est venu. et reparti.");
        whole("Il est venu ! a-t-il crié.");
        whole("Super. 😀 Oui.");
        whole("Non. , dit-il");
    }

    #[test]
    fn lowercase_continuation_never_splits() {
        whole("Il a des pommes, des poires, etc. et des fraises.");
        whole("Il pleut... mais il fait beau.");
        whole("Il pleut… mais il fait beau.");
        whole("« Tu viens ? » demanda-t-elle.");
        whole("« Quelle chance ! » s'écria-t-il.");
        check(
            "Il a des pommes, etc. Elles sont mûres.",
            &["Il a des pommes, etc.", "Elles sont mûres."],
        );
    }

    #[test]
    fn titles_do_not_end_sentences() {
        check(
            "M. Dupont est arrivé. Il a dit bonjour.",
            &["M. Dupont est arrivé.", "Il a dit bonjour."],
        );
        whole("MM. Dupont et Durand sont là.");
        whole("Mme Durand et Mlle Martin parlent à Me Leroy.");
        whole("Mme. Durand et Mlle. Martin parlent à Me. Leroy.");
        whole("Le Dr. Martin et le Pr. Leblanc opèrent.");
        whole("Il habite rue St. Jacques, près de la Ste. Chapelle.");
        whole("Mgr. Lefebvre et Mr. Smith arrivent.");
        check(
            "Demandez à M. Martin. Il sait.",
            &["Demandez à M. Martin.", "Il sait."],
        );
    }

    #[test]
    fn abbreviations_that_never_end_sentences() {
        whole("Voir cf. Chapitre premier.");
        whole("Il est né en 52 av. J.-C. à Rome.");
        whole("Il est mort en 14 apr. J.-C. à Nola.");
        whole("Des fruits, p. ex. Pommes et poires.");
        whole("Des fruits, par ex. Pommes et poires.");
        whole("Le français, c.-à-d. La langue de Molière.");
        whole("Publié aux éd. Gallimard en 1950.");
        whole("Il y a env. 30 km à faire.");
        whole("Il habite 12 av. Foch à Paris.");
    }

    #[test]
    fn era_after_jc_may_end_a_sentence() {
        check(
            "César meurt en 44 av. J.-C. Auguste lui succède.",
            &["César meurt en 44 av. J.-C.", "Auguste lui succède."],
        );
        check(
            "Il meurt en 14 apr. J.-C. Tibère règne.",
            &["Il meurt en 14 apr. J.-C.", "Tibère règne."],
        );
    }

    #[test]
    fn abbreviations_before_numbers() {
        whole("Voir p. 12 et pp. 14-16 du livre.");
        whole("Voir vol. 3, chap. 4 et art. 12 du code.");
        whole("Voir chap. IV et vol. XII du recueil.");
        whole("Voir fig. 3 et n. 5 en bas de page.");
        whole("Voir t. 2 de l'édition.");
        whole("Le 12 janv. 2025 et le 3 févr. 2024 et le 1er sept. 2023 et le 5 déc. 2022.");
        whole("Art. 12 du code civil.");
        whole("Voir le n° 3 et le no. 4 du journal.");
        check("Voir le n° 12. Il y est.", &["Voir le n° 12.", "Il y est."]);
        // The same words end sentences before a capital.
        check(
            "C'est de l'art. Il le sait.",
            &["C'est de l'art.", "Il le sait."],
        );
        check(
            "Il a raté son vol. Il est furieux.",
            &["Il a raté son vol.", "Il est furieux."],
        );
        check(
            "Ils étaient sept. Ils sont partis.",
            &["Ils étaient sept.", "Ils sont partis."],
        );
        check("Voir chap. Introduction.", &["Voir chap.", "Introduction."]);
    }

    #[test]
    fn initials() {
        whole("J. K. Rowling a écrit ce livre.");
        whole("Ch. de Gaulle et Ch. Baudelaire sont cités.");
        whole("Th. Gautier et Ph. Sollers aussi.");
        whole("J.-P. Sartre et J.-M. Le Pen.");
        whole("J.K. Rowling écrit.");
        // Acronyms of three letters or more may end a sentence.
        check(
            "Il vit aux U.S.A. Il y travaille.",
            &["Il vit aux U.S.A.", "Il y travaille."],
        );
    }

    #[test]
    fn numbers_dates_and_times() {
        check(
            "Le prix est 3,5 euros. Il a 1 000 ans.",
            &["Le prix est 3,5 euros.", "Il a 1 000 ans."],
        );
        whole("Il mesure 3.5 m et pèse 1 000 kg.");
        check(
            "Rendez-vous à 12 h 30. Soyez à l'heure.",
            &["Rendez-vous à 12 h 30.", "Soyez à l'heure."],
        );
        whole("Le 1er janvier et le 2e jour.");
        check(
            "Le 11.12.2025 à 12:30. Ensuite.",
            &["Le 11.12.2025 à 12:30.", "Ensuite."],
        );
        check(
            "Il est né en 1952. Il est mort en 2020.",
            &["Il est né en 1952.", "Il est mort en 2020."],
        );
        check(
            "Il a couru 100 m. Ensuite il s'est reposé.",
            &["Il a couru 100 m.", "Ensuite il s'est reposé."],
        );
        whole("La version 2.0.1 est sortie.");
    }

    #[test]
    fn urls_and_email_addresses() {
        check(
            "Visitez www.example.fr ou écrivez à jean.dupont@mail.fr. Merci.",
            &[
                "Visitez www.example.fr ou écrivez à jean.dupont@mail.fr.",
                "Merci.",
            ],
        );
        whole("Voir https://exemple.fr/page?id=1&x=Y!Z pour plus.");
        whole("Voir http://a.b.fr/?q=Paris.France et après.");
        check(
            "Écrivez à M.Martin@exemple.fr. Il répondra.",
            &["Écrivez à M.Martin@exemple.fr.", "Il répondra."],
        );
    }

    #[test]
    fn ellipsis_inside_a_sentence() {
        whole("Il a dit (...) que tout allait bien.");
        whole("Il a dit […] Que tout allait bien.");
        whole("Il a dit (…) Que tout allait bien.");
        whole("Le « ... » final Reste.");
        whole("Il cita «...» Puis rien.");
        check("Non. ... Et puis ?", &["Non.", "... Et puis ?"]);
        check("Non. … Et puis ?", &["Non.", "… Et puis ?"]);
        whole("... Et puis ?");
        whole("Non. ...et puis ?");
    }

    #[test]
    fn french_quotes() {
        check(
            "« Bonjour. » dit-il. Puis il partit.",
            &["« Bonjour. » dit-il.", "Puis il partit."],
        );
        check(
            "« Tu viens ? » demanda-t-elle. Non.",
            &["« Tu viens ? » demanda-t-elle.", "Non."],
        );
        check(
            "Il dit : « Viens ! » Elle vient.",
            &["Il dit : « Viens ! »", "Elle vient."],
        );
        check(
            "« Viens ! », dit-il. Elle vient.",
            &["« Viens ! », dit-il.", "Elle vient."],
        );
        check(
            "« Viens. » « Non. » Fin.",
            &["« Viens. »", "« Non. »", "Fin."],
        );
        // A sentence ending inside a quote that goes on is split there.
        check(
            "« Viens ! Je t'attends. » Il part.",
            &["« Viens !", "Je t'attends. »", "Il part."],
        );
        // ‹ › and no-break spaces.
        check("‹ Oui. › Non.", &["‹ Oui. ›", "Non."]);
    }

    #[test]
    fn straight_and_curly_quotes() {
        check(
            "\"Bonjour.\" dit-il. \"Salut !\" Elle part.",
            &["\"Bonjour.\" dit-il.", "\"Salut !\"", "Elle part."],
        );
        check(
            "“Bonjour.” dit-il. “Salut !” Elle part.",
            &["“Bonjour.” dit-il.", "“Salut !”", "Elle part."],
        );
        check("'Oui.' Il part.", &["'Oui.'", "Il part."]);
        check(
            "Il dit \"Viens !\" \"Non !\" Fin.",
            &["Il dit \"Viens !\"", "\"Non !\"", "Fin."],
        );
        check(
            "Il dit : \" Viens ! \" Elle vient.",
            &["Il dit : \" Viens ! \"", "Elle vient."],
        );
    }

    #[test]
    fn closing_brackets_after_the_period() {
        check(
            "(Voir plus haut.) Ensuite on verra.",
            &["(Voir plus haut.)", "Ensuite on verra."],
        );
        check(
            "[Note du traducteur.] Suite.",
            &["[Note du traducteur.]", "Suite."],
        );
        whole("(Voir plus haut.) et ensuite.");
        check(
            "Il est venu (enfin !). Puis il partit.",
            &["Il est venu (enfin !).", "Puis il partit."],
        );
        check(
            "Il dit « oui ». Puis il partit.",
            &["Il dit « oui ».", "Puis il partit."],
        );
    }

    #[test]
    fn dialogue_dashes_start_sentences() {
        check(
            "— Bonjour, dit-il. — Salut, répondit-elle.",
            &["— Bonjour, dit-il.", "— Salut, répondit-elle."],
        );
        check("– Tu viens ? – Non !", &["– Tu viens ?", "– Non !"]);
        check("- Oui. - Non.", &["- Oui.", "- Non."]);
        check("― Oui. ― Non.", &["― Oui.", "― Non."]);
        // A dash inside a sentence, or a minus sign, does not split.
        whole("Il est venu — enfin — hier.");
        whole("Il fait froid. -5 degrés ce matin.");
    }

    #[test]
    fn other_scripts() {
        check(
            "Привет. Как дела? Хорошо!",
            &["Привет.", "Как дела?", "Хорошо!"],
        );
        check(
            "字。字。Bonjour. Oui.",
            &["字。", "字。", "Bonjour.", "Oui."],
        );
        check("मैं ठीक हूँ। तुम कैसे हो?", &["मैं ठीक हूँ।", "तुम कैसे हो?"]);
        check("Bonjour. مرحبا. Oui.", &["Bonjour.", "مرحبا.", "Oui."]);
        check("Καλημέρα. Τι κάνεις;", &["Καλημέρα.", "Τι κάνεις;"]);
    }

    #[test]
    fn paragraph_separators_inside_a_line() {
        check("Bonjour\u{2029}Salut", &["Bonjour", "Salut"]);
        check("Bonjour\rSalut.", &["Bonjour", "Salut."]);
        check("Fin.\u{2028}Début.", &["Fin.", "Début."]);
    }

    #[test]
    fn empty_and_degenerate_inputs() {
        assert!(split_sentences("").is_empty());
        assert!(split_sentences("   \t \u{a0}").is_empty());
        for text in [
            "...",
            "…",
            "«»",
            "« »",
            ". . .",
            "?!?!",
            "!",
            "\"",
            "( )",
            "— —",
            "-",
            "M.",
            "J.-C.",
            "p.",
            "\u{0}",
            "\u{7}\u{1b}[0m",
            "\u{feff}",
            "😀",
            "👩‍👩‍👧‍👦. 👍🏽!",
            "a",
            ".a",
            "a.",
            " . A",
            "e\u{301}. E\u{301}",
            "\u{301}. \u{301}",
        ] {
            let ranges = split_sentences(text);
            assert_partition(text, &ranges);
            assert!(!ranges.is_empty(), "{text:?} has text");
        }
        check("... Bonjour", &["... Bonjour"]);
        check("?! Non.", &["?! Non."]);
        check("Bonjour ...", &["Bonjour ..."]);
        check("Oui. »", &["Oui. »"]);
        check("  Oui.  Non.  ", &["Oui.", "Non."]);
    }

    #[test]
    fn control_characters() {
        let text = "Début\u{0}. Suite\u{7}! \u{1b}[1mGras\u{1b}[0m. Fin";
        let got = sentences(text);
        assert_eq!(got.len(), 3, "{got:?}");
        check("Un.\u{b}Deux.\u{c}Trois.", &["Un.", "Deux.", "Trois."]);
    }

    /// A small deterministic generator for property checks.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[(self.next() % items.len() as u64) as usize]
        }
    }

    const ATOMS: &[&str] = &[
        " ",
        "  ",
        "\t",
        "\u{a0}",
        "\u{202f}",
        "\u{2029}",
        "\r",
        ".",
        "..",
        "...",
        "…",
        "!",
        "?",
        "?!",
        ",",
        ";",
        ":",
        "«",
        "»",
        "\"",
        "'",
        "’",
        "“",
        "”",
        "(",
        ")",
        "[",
        "]",
        "—",
        "–",
        "-",
        "M",
        "Mme",
        "J",
        "C",
        "av",
        "apr",
        "p",
        "ex",
        "etc",
        "cf",
        "chap",
        "IV",
        "le",
        "Il",
        "à",
        "É",
        "3",
        "1 000",
        "3,5",
        "12",
        "h",
        "x@y.fr",
        "http://a.fr/?q=1",
        "😀",
        "👩‍👩‍👧",
        "Привет",
        "字",
        "。",
        "।",
        "\u{0}",
        "\u{1b}",
        "\u{301}",
        "a",
        "Z",
    ];

    #[test]
    fn property_random_texts_are_partitioned() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..5000 {
            let len = (rng.next() % 40) as usize;
            let text: String = (0..len).map(|_| rng.pick(ATOMS)).collect();
            let ranges = split_sentences(&text);
            assert_partition(&text, &ranges);
            assert_eq!(ranges.is_empty(), text.trim().is_empty(), "{text:?}");
        }
    }

    #[test]
    fn property_joining_sentences_gives_back_the_text() {
        let text = "  — Bonjour, M. Dupont ! « Vous venez ? » demanda-t-elle… Il hésita... Puis : « Non. » Fin.  ";
        let ranges = split_sentences(text);
        assert_partition(text, &ranges);
        let mut rebuilt = String::from(&text[..ranges[0].start]);
        for (k, r) in ranges.iter().enumerate() {
            if k > 0 {
                rebuilt.push_str(&text[ranges[k - 1].end..r.start]);
            }
            rebuilt.push_str(&text[r.clone()]);
        }
        rebuilt.push_str(&text[ranges[ranges.len() - 1].end..]);
        assert_eq!(rebuilt, text);
        assert_eq!(
            ranges.len(),
            5,
            "{:?}",
            ranges.iter().map(|r| &text[r.clone()]).collect::<Vec<_>>()
        );
    }

    #[test]
    fn megabyte_lines_are_linear() {
        const MB: usize = 1 << 20;
        let patterns: Vec<String> = vec![
            format!("a.{}x", " ".repeat(MB)),
            format!("a.{}x", ")".repeat(MB)),
            format!("a.{}x", " )".repeat(MB / 2)),
            "a. ".repeat(MB / 3),
            "M. ".repeat(MB / 3),
            "Il pleut. ".repeat(MB / 10),
            ". ".repeat(MB / 2),
            "…".repeat(MB / 3),
            "a".repeat(MB),
            "\u{2029}".repeat(MB / 3),
            "« ".repeat(MB / 3),
            format!("{}. Fin", "a".repeat(MB)),
            format!("Oui. {}", "\u{301}".repeat(MB / 2)),
            "Привет мир! 字。".repeat(MB / 30),
            "p. ex. J.-C. av. ".repeat(MB / 16),
        ];
        let started = std::time::Instant::now();
        for text in &patterns {
            let one = std::time::Instant::now();
            let ranges = split_sentences(text);
            assert_partition(text, &ranges);
            // Quadratic behaviour would take minutes or hours here.
            assert!(
                one.elapsed().as_secs() < 20,
                "{} bytes took {:?}",
                text.len(),
                one.elapsed()
            );
        }
        assert!(
            started.elapsed().as_secs() < 60,
            "all took {:?}",
            started.elapsed()
        );
    }
}
