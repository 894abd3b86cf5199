//! Splitting a sentence that is too long for the model into pieces that fit.
//!
//! Pieces are cut, in order of preference, at clause boundaries (white space after `;` `:`
//! `,` `)` `]`, or before `(` `[` and a dash `—` `–`), then at any white space, then between
//! grapheme clusters, and as a last resort between chars (a single grapheme cluster larger
//! than the limit). At each level the cuts give as few pieces as possible, and among those
//! the most balanced ones (the largest piece as small as it can be).
//!
//! Token counts are taken as roughly additive: the cost of a piece of several atoms is
//! estimated from the atoms' counts (less the fixed cost of an empty string, such as an
//! end-of-sequence token), then every piece is counted for real before it is accepted, and
//! split further if the estimate was wrong. A piece that still exceeds the limit is only
//! ever one char long.

use std::ops::Range;

use icu_segmenter::GraphemeClusterSegmenter;

use super::segment::trim_range;

/// Byte ranges of `sentence` to translate separately so each has at most `max_tokens`
/// tokens by `count_tokens`.
///
/// A sentence within the limit comes back whole (trimmed). Ranges are in order, non-empty,
/// on char boundaries, trimmed, and together cover every non-white-space char of
/// `sentence` exactly once: between two ranges there is only white space (or nothing, where
/// a word had to be cut). Empty or white-space-only input gives no range. Pure: the caller
/// decides whether to warn. The only piece that can exceed the limit is a single char that
/// alone counts more than `max_tokens`.
pub fn split_long(
    sentence: &str,
    max_tokens: usize,
    count_tokens: &dyn Fn(&str) -> usize,
) -> Vec<Range<usize>> {
    let whole = trim_range(sentence, 0..sentence.len());
    if whole.is_empty() {
        return Vec::new();
    }
    let empty = count_tokens("");
    let overhead = if empty < max_tokens { empty } else { 0 };
    let splitter = Splitter {
        text: sentence,
        max: max_tokens,
        budget: max_tokens - overhead,
        overhead,
        count: count_tokens,
    };
    let mut out = Vec::new();
    splitter.split(whole, Level::Clause, &mut out);
    out
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Level {
    Clause,
    Word,
    Grapheme,
}

struct Splitter<'a> {
    text: &'a str,
    max: usize,
    /// `max` less `overhead`: what the atoms of one piece may add up to.
    budget: usize,
    /// Tokens an empty string counts (special tokens), taken once per piece.
    overhead: usize,
    count: &'a dyn Fn(&str) -> usize,
}

impl Splitter<'_> {
    fn fits(&self, range: &Range<usize>) -> bool {
        (self.count)(&self.text[range.clone()]) <= self.max
    }

    /// Pushes `range` whole if it fits, else cut at `level` (or finer).
    fn split(&self, range: Range<usize>, level: Level, out: &mut Vec<Range<usize>>) {
        if self.fits(&range) {
            out.push(range);
            return;
        }
        match level {
            Level::Clause => {
                let atoms = self.atoms(range.clone(), true);
                if atoms.len() < 2 {
                    self.split(range, Level::Word, out);
                } else {
                    self.pack(&atoms, Level::Word, out);
                }
            }
            Level::Word => {
                let atoms = self.atoms(range.clone(), false);
                if atoms.len() < 2 {
                    self.split_graphemes(range, out);
                } else {
                    self.pack(&atoms, Level::Grapheme, out);
                }
            }
            Level::Grapheme => self.split_graphemes(range, out),
        }
    }

    /// The pieces of trimmed `range` between white-space runs; with `clauses`, only the runs
    /// at clause boundaries.
    fn atoms(&self, range: Range<usize>, clauses: bool) -> Vec<Range<usize>> {
        let slice = &self.text[range.clone()];
        let mut atoms = Vec::new();
        let mut atom_start = range.start;
        let mut prev: Option<char> = None;
        let mut chars = slice.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            if !c.is_whitespace() {
                prev = Some(c);
                continue;
            }
            let mut run_end = i + c.len_utf8();
            while let Some(&(j, d)) = chars.peek() {
                if !d.is_whitespace() {
                    break;
                }
                run_end = j + d.len_utf8();
                chars.next();
            }
            let next = chars.peek().map(|&(_, d)| d);
            let cut = !clauses
                || prev.is_some_and(|p| matches!(p, ';' | ':' | ',' | ')' | ']'))
                || next.is_some_and(|n| matches!(n, '(' | '[' | '—' | '–' | '―'));
            if cut && next.is_some() && i > 0 {
                atoms.push(atom_start..range.start + i);
                atom_start = range.start + run_end;
            }
        }
        atoms.push(atom_start..range.end);
        atoms
    }

    /// Groups consecutive atoms into as few, as balanced pieces as fit; atoms too large on
    /// their own are cut at `next` level.
    fn pack(&self, atoms: &[Range<usize>], next: Level, out: &mut Vec<Range<usize>>) {
        let costs: Vec<usize> = atoms
            .iter()
            .map(|a| (self.count)(&self.text[a.clone()]).saturating_sub(self.overhead))
            .collect();
        let mut i = 0;
        while i < atoms.len() {
            if costs[i] > self.budget {
                self.split(atoms[i].clone(), next, out);
                i += 1;
                continue;
            }
            let mut j = i;
            while j < atoms.len() && costs[j] <= self.budget {
                j += 1;
            }
            for group in balanced_groups(&costs[i..j], self.budget) {
                self.emit_group(&atoms[i + group.start..i + group.end], next, out);
            }
            i = j;
        }
    }

    /// Pushes a group of atoms as one piece if it really fits; else halves it.
    fn emit_group(&self, atoms: &[Range<usize>], next: Level, out: &mut Vec<Range<usize>>) {
        match atoms {
            [] => {}
            [single] => self.split(single.clone(), next, out),
            [first, .., last] => {
                let range = first.start..last.end;
                if self.fits(&range) {
                    out.push(range);
                } else {
                    let mid = atoms.len() / 2;
                    self.emit_group(&atoms[..mid], next, out);
                    self.emit_group(&atoms[mid..], next, out);
                }
            }
        }
    }

    /// Cuts between grapheme clusters (a cluster too large alone is cut between chars).
    fn split_graphemes(&self, range: Range<usize>, out: &mut Vec<Range<usize>>) {
        let slice = &self.text[range.clone()];
        let bounds: Vec<usize> = GraphemeClusterSegmenter::new()
            .segment_str(slice)
            .map(|b| range.start + b)
            .collect();
        self.greedy(&bounds, true, out);
    }

    /// Longest-first pieces over `bounds` (sorted byte offsets, first and last included),
    /// found by galloping then bisecting, so a long text costs O(n log n) counted bytes.
    fn greedy(&self, bounds: &[usize], chars_fallback: bool, out: &mut Vec<Range<usize>>) {
        let last = bounds.len().saturating_sub(1);
        let mut i = 0;
        while i < last {
            let unit = bounds[i]..bounds[i + 1];
            if !self.fits(&unit) {
                let slice = &self.text[unit.clone()];
                if chars_fallback && slice.chars().nth(1).is_some() {
                    let chars: Vec<usize> = slice
                        .char_indices()
                        .map(|(k, _)| unit.start + k)
                        .chain(std::iter::once(unit.end))
                        .collect();
                    self.greedy(&chars, false, out);
                } else {
                    push_trimmed(self.text, unit, out); // one char: nothing finer exists
                }
                i += 1;
                continue;
            }
            let mut good = i + 1;
            let mut step = 1;
            let mut bad = None;
            while good < last {
                let probe = (good + step).min(last);
                if self.fits(&(bounds[i]..bounds[probe])) {
                    good = probe;
                    step = step.saturating_mul(2);
                } else {
                    bad = Some(probe);
                    break;
                }
            }
            if let Some(mut bad) = bad {
                while bad - good > 1 {
                    let mid = good + (bad - good) / 2;
                    if self.fits(&(bounds[i]..bounds[mid])) {
                        good = mid;
                    } else {
                        bad = mid;
                    }
                }
            }
            push_trimmed(self.text, bounds[i]..bounds[good], out);
            i = good;
        }
    }
}

fn push_trimmed(text: &str, range: Range<usize>, out: &mut Vec<Range<usize>>) {
    let range = trim_range(text, range);
    if !range.is_empty() {
        out.push(range);
    }
}

/// Groups (index ranges) of consecutive `costs`, each at most `budget` (every cost is):
/// as few as possible; among those, the largest group as small as possible; and each group
/// as close as it can be to an even share of what is left. Linear in `costs.len()` apart
/// from a binary search over the cap.
fn balanced_groups(costs: &[usize], budget: usize) -> Vec<Range<usize>> {
    let m = costs.len();
    if m == 0 {
        return Vec::new();
    }
    let fewest = greedy_groups(costs, budget).len();
    let mut lo = costs.iter().copied().max().unwrap_or(0);
    let mut hi = budget.max(lo);
    // Smallest cap that still needs no more than `fewest` groups.
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if greedy_groups(costs, mid).len() <= fewest {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    let cap = lo as u128;
    let mut prefix = vec![0u128; m + 1];
    for (i, &c) in costs.iter().enumerate() {
        prefix[i + 1] = prefix[i] + c as u128;
    }
    // reach[i]: the furthest end of a group starting at i; needed[i]: the fewest groups
    // for costs[i..] (greedy is optimal), with needed[m] = 0.
    let mut reach = vec![0usize; m];
    let mut j = 0;
    for (i, r) in reach.iter_mut().enumerate() {
        j = j.max(i + 1);
        while j < m && prefix[j + 1] - prefix[i] <= cap {
            j += 1;
        }
        *r = j;
    }
    let mut needed = vec![0usize; m + 1];
    for i in (0..m).rev() {
        needed[i] = 1 + needed[reach[i]];
    }
    let mut groups = Vec::with_capacity(needed[0]);
    let mut left = needed[0];
    let mut i = 0;
    while i < m {
        if left <= 1 {
            groups.push(i..m);
            break;
        }
        // Aim at an even share of what is left, among ends that leave a feasible rest.
        let target = (prefix[m] - prefix[i]) / left as u128;
        let mut best = reach[i];
        let mut best_miss = u128::MAX;
        for end in i + 1..=reach[i] {
            if needed[end] > left - 1 {
                continue;
            }
            let sum = prefix[end] - prefix[i];
            let miss = sum.abs_diff(target);
            if miss < best_miss {
                best = end;
                best_miss = miss;
            } else if sum >= target {
                break; // sums only grow from here: every later end misses more
            }
        }
        groups.push(i..best);
        i = best;
        left -= 1;
    }
    groups
}

/// Fills each group as far as `cap` allows (the fewest groups for that cap).
fn greedy_groups(costs: &[usize], cap: usize) -> Vec<Range<usize>> {
    let mut groups = Vec::new();
    let mut start = 0;
    let mut sum = 0usize;
    for (i, &c) in costs.iter().enumerate() {
        if i > start && sum.saturating_add(c) > cap {
            groups.push(start..i);
            start = i;
            sum = 0;
        }
        sum = sum.saturating_add(c);
    }
    groups.push(start..costs.len());
    groups
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::segment::assert_partition;
    use std::cell::Cell;

    /// One token per word plus an end-of-sequence token, like a Marian tokenizer would
    /// roughly count.
    fn words(s: &str) -> usize {
        s.split_whitespace().count() + 1
    }

    /// One token per char (spaces included) plus end of sequence: not additive over words.
    fn chars(s: &str) -> usize {
        s.chars().count() + 1
    }

    /// Splits and checks the contract: coverage, order, and every piece within the limit
    /// unless it is one char.
    #[track_caller]
    fn pieces<'a>(text: &'a str, max: usize, count: &dyn Fn(&str) -> usize) -> Vec<&'a str> {
        let ranges = split_long(text, max, count);
        assert_partition(text, &ranges);
        for r in &ranges {
            let piece = &text[r.clone()];
            assert!(
                count(piece) <= max || piece.chars().count() == 1,
                "piece {piece:?} over {max}"
            );
        }
        ranges.into_iter().map(|r| &text[r]).collect()
    }

    #[test]
    fn a_sentence_within_the_limit_stays_whole() {
        assert_eq!(
            pieces("  Une phrase courte.  ", 10, &words),
            ["Une phrase courte."]
        );
        assert_eq!(pieces("Quatre mots ici.", 4, &words), ["Quatre mots ici."]);
    }

    #[test]
    fn empty_input_gives_nothing() {
        assert!(split_long("", 5, &words).is_empty());
        assert!(split_long(" \t\u{a0} ", 5, &words).is_empty());
        assert!(split_long("", 0, &words).is_empty());
    }

    #[test]
    fn cuts_at_clause_boundaries_first() {
        let text = "Il est venu hier soir, il a mangé une pomme verte; puis il est parti : sans rien dire.";
        assert_eq!(
            pieces(text, 10, &words),
            [
                "Il est venu hier soir,",
                "il a mangé une pomme verte;",
                "puis il est parti : sans rien dire."
            ]
        );
        let text = "Il est venu (comme toujours) avec son chien — un vieux labrador — et son chat.";
        assert_eq!(
            pieces(text, 6, &words),
            [
                "Il est venu",
                "(comme toujours) avec son chien",
                "— un vieux labrador",
                "— et son chat."
            ]
        );
    }

    #[test]
    fn decimal_commas_and_times_are_not_clause_boundaries() {
        let text = "Le prix est de 3,5 euros à 12:30 précises pour tout le monde ici.";
        let got = pieces(text, 8, &words);
        assert!(
            got.iter()
                .all(|p| !p.ends_with("3,") && !p.starts_with("5 ")),
            "{got:?}"
        );
        assert!(
            got.iter().any(|p| p.contains("3,5")) && got.iter().any(|p| p.contains("12:30")),
            "{got:?}"
        );
    }

    #[test]
    fn pieces_are_few_and_balanced() {
        // Six clauses of three words: a limit of 10 tokens (9 words) fits three clauses,
        // so two pieces of three clauses, not 3 + 3 by luck but by design; with a limit
        // of 13 (12 words: four clauses) still two pieces, balanced 3 + 3 rather than 4 + 2.
        let text = "un deux trois, un deux trois, un deux trois, un deux trois, un deux trois, un deux trois.";
        for max in [10, 13, 16] {
            let got = pieces(text, max, &words);
            assert_eq!(got.len(), 2, "max {max}: {got:?}");
            assert_eq!(words(got[0]), words(got[1]), "max {max}: {got:?}");
        }
        // Seven clauses, three per piece at most: three pieces, the largest of three clauses.
        let text = "a b c, a b c, a b c, a b c, a b c, a b c, a b c.";
        let got = pieces(text, 10, &words);
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(got.iter().all(|p| (7..=10).contains(&words(p))), "{got:?}");
    }

    #[test]
    fn falls_back_to_white_space() {
        let text = "Une très longue phrase sans aucune ponctuation qui continue encore et encore";
        let got = pieces(text, 5, &words);
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(got.join(" "), text);
        // A clause too long alone is cut at white space; the others stay whole.
        let text = "Court, une clause beaucoup trop longue pour tenir dans la limite fixée, court.";
        let got = pieces(text, 6, &words);
        assert_eq!(got.first(), Some(&"Court,"), "{got:?}");
        assert_eq!(got.last(), Some(&"court."), "{got:?}");
    }

    #[test]
    fn falls_back_to_grapheme_clusters() {
        let text = "a".repeat(100);
        let got = pieces(&text, 11, &chars);
        assert_eq!(got.len(), 10, "{got:?}");
        assert_eq!(got.concat(), text);
        // Accented letters written with combining marks stay whole.
        let text = "e\u{301}".repeat(30);
        let got = pieces(&text, 5, &chars);
        for piece in &got {
            assert!(piece.starts_with('e'), "cut inside a cluster: {piece:?}");
        }
        assert_eq!(got.concat(), text);
        // Emoji sequences too.
        let family = "👩‍👩‍👧‍👦";
        let text = family.repeat(5);
        let got = pieces(&text, family.chars().count() + 1, &chars);
        assert_eq!(got, vec![family; 5]);
    }

    #[test]
    fn a_cluster_larger_than_the_limit_is_cut_between_chars() {
        let text = format!("e{}", "\u{301}".repeat(20));
        let got = pieces(&text, 6, &chars);
        assert!(got.len() >= 4, "{got:?}");
        assert_eq!(got.concat(), text);
    }

    #[test]
    fn impossible_limits_still_cover_the_text() {
        let text = "Bonjour à tous, ça va ?";
        let got = pieces(text, 0, &words);
        assert_eq!(got.concat(), text.replace(' ', ""));
        assert!(got.iter().all(|p| p.chars().count() == 1), "{got:?}");
        // A counter that fails on everything (the caller maps errors to usize::MAX).
        let failing = |_: &str| usize::MAX;
        let got = pieces(text, 10, &failing);
        assert_eq!(got.concat(), text.replace(' ', ""));
    }

    #[test]
    fn overhead_of_special_tokens_is_counted_once_per_piece() {
        // With 1 special token per piece and a limit of 4, three words fit in a piece.
        let text = "un deux trois quatre cinq six";
        assert_eq!(
            pieces(text, 4, &words),
            ["un deux trois", "quatre cinq six"]
        );
        // Two special tokens per piece.
        let two = |s: &str| s.split_whitespace().count() + 2;
        assert_eq!(pieces(text, 5, &two), ["un deux trois", "quatre cinq six"]);
    }

    #[test]
    fn non_additive_counts_are_checked_for_real() {
        // Counting chars: the spaces between words cost too, which the sum of words misses.
        let text = "aaaa bbbb cccc dddd eeee ffff gggg hhhh";
        let got = pieces(text, 10, &chars);
        assert!(got.iter().all(|p| chars(p) <= 10), "{got:?}");
        assert_eq!(got.join(" "), text);
    }

    #[test]
    fn control_characters_and_other_scripts() {
        for text in [
            "\u{0}\u{1}\u{2}, \u{7}\u{1b}[0m; \u{7f}",
            "Привет, как дела? Всё хорошо: спасибо.",
            "字字字字字，字字字字字。",
            "😀😀😀, 😀😀😀; 😀😀😀",
            "e\u{301}e\u{301}, a\u{308}",
        ] {
            for max in 0..6 {
                pieces(text, max, &words);
                pieces(text, max, &chars);
            }
        }
    }

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    #[test]
    fn property_random_sentences() {
        const ATOMS: &[&str] = &[
            " ",
            "  ",
            "\t",
            "\u{a0}",
            ",",
            ";",
            ":",
            "(",
            ")",
            "[",
            "]",
            "—",
            "–",
            "-",
            "mot",
            "le",
            "très-long-mot",
            "3,5",
            "12:30",
            "😀",
            "e\u{301}",
            "字",
            "Привет",
            "\u{0}",
            ".",
            "«",
            "»",
        ];
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        for _ in 0..2000 {
            let len = (rng.next() % 30) as usize;
            let text: String = (0..len)
                .map(|_| ATOMS[(rng.next() % ATOMS.len() as u64) as usize])
                .collect();
            let max = (rng.next() % 12) as usize;
            pieces(&text, max, &words);
            pieces(&text, max, &chars);
        }
    }

    #[test]
    fn megabyte_sentences_finish_fast() {
        const MB: usize = 1 << 20;
        let calls = Cell::new(0usize);
        let counted = |s: &str| {
            calls.set(calls.get() + 1);
            words(s)
        };
        let text = "Un mot, puis un autre; encore un : et voilà ".repeat(MB / 44);
        let started = std::time::Instant::now();
        let got = split_long(&text, 200, &counted);
        assert_partition(&text, &got);
        assert!(got.iter().all(|r| words(&text[r.clone()]) <= 200));
        assert!(calls.get() < 200_000, "{} calls", calls.get());

        // One 1 MB word counted per char: galloping keeps it O(n log n).
        let text = "x".repeat(MB);
        let bytes = Cell::new(0usize);
        let per_char = |s: &str| {
            bytes.set(bytes.get() + s.len());
            chars(s)
        };
        let got = split_long(&text, 512, &per_char);
        assert_partition(&text, &got);
        assert_eq!(got.len(), MB.div_ceil(511));
        assert!(bytes.get() < 64 * MB, "{} bytes counted", bytes.get());

        // One 1 MB grapheme cluster (a letter and its combining marks): cut between chars.
        let text = format!("e{}", "\u{301}".repeat(MB / 2));
        let got = split_long(&text, 512, &chars);
        assert_partition(&text, &got);
        assert_eq!(got.len(), (MB / 2 + 1).div_ceil(511));
        assert!(
            started.elapsed().as_secs() < 30,
            "took {:?}",
            started.elapsed()
        );
    }
}
