//! Span transfer: inline formatting of a source text carried onto its translation by word
//! alignment (as Bergamot carries HTML tags), so sentences are translated whole and their
//! bold, links and code land on the words that translate them.
//!
//! A span covers the source words it overlaps; its target range runs from the first to the
//! last target word those words align to. A span whose words have no alignment takes the
//! nearest aligned source word's targets; an empty span (a line break, an image) goes after
//! the target of the word before it. The target spans then nest as the source spans did:
//! each is clipped to its parent's range and kept clear of its earlier siblings, so markup
//! written from them is always balanced.

use std::collections::BTreeSet;
use std::ops::Range;

use super::alignment::words;

/// One translated sentence of the text: where it is on each side and its word alignment
/// (word indices within the sentence).
#[derive(Debug, Clone, Copy)]
pub struct AlignedSentence<'a> {
    pub source: &'a Range<usize>,
    pub target: &'a Range<usize>,
    pub alignment: &'a [(usize, usize)],
}

/// The target ranges of `spans` (byte ranges of `source`, properly nested, in document
/// order: a parent before its children). `parents[i]` is span i's enclosing span (see
/// [`parents`] where only the ranges tell).
///
/// Which spans are segments that share their parent's target out between them (each
/// target word to one segment, in the segments' order, each getting a word where there are
/// enough; see [`divide`]), rather than formatting placed where its words went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segments {
    None,
    /// The top-level spans (subtitle cues).
    TopLevel,
    /// Every non-empty span at every level (a Word paragraph's runs and hyperlinks: no text
    /// may fall outside a run).
    Nested,
}

pub fn transfer(
    source: &str,
    spans: &[Range<usize>],
    parents: &[Option<usize>],
    target: &str,
    sentences: &[AlignedSentence],
    segments: Segments,
) -> Vec<Range<usize>> {
    let source_words = words(source);
    let target_words = words(target);
    let aligned = global_alignment(&source_words, &target_words, sentences);
    // A parent must come before its child.
    let parents: Vec<Option<usize>> = parents
        .iter()
        .enumerate()
        .map(|(i, p)| p.filter(|&p| p < i))
        .chain(std::iter::repeat(None))
        .take(spans.len())
        .collect();
    let is_segment = |i: usize| {
        !spans[i].is_empty()
            && match segments {
                Segments::None => false,
                Segments::TopLevel => parents[i].is_none(),
                Segments::Nested => true,
            }
    };
    let mut placed: Vec<Range<usize>> = Vec::with_capacity(spans.len());
    // Per parent (None: the text), the shares of its segment children, once computed.
    let mut shares: std::collections::HashMap<Option<usize>, Vec<Range<usize>>> =
        std::collections::HashMap::new();
    for (i, span) in spans.iter().enumerate() {
        if is_segment(i) {
            let parent = parents[i];
            let within = parent.map_or(0..target.len(), |p| placed[p].clone());
            let siblings: Vec<usize> = (0..spans.len())
                .filter(|&j| parents[j] == parent && is_segment(j))
                .collect();
            let share = shares.entry(parent).or_insert_with(|| {
                let ranges: Vec<Range<usize>> =
                    siblings.iter().map(|&j| spans[j].clone()).collect();
                divide(&ranges, &within, &source_words, &target_words, &aligned)
            });
            let k = siblings.iter().position(|&j| j == i).unwrap_or(0);
            placed.push(share.get(k).cloned().unwrap_or(within.start..within.start));
            continue;
        }
        let mut range = place(source, span, target, &source_words, &target_words, &aligned);
        let (within, siblings): (Range<usize>, Vec<usize>) = match parents[i] {
            Some(p) => (
                placed[p].clone(),
                (p + 1..i).filter(|&j| parents[j] == Some(p)).collect(),
            ),
            None => (
                0..target.len(),
                (0..i).filter(|&j| parents[j].is_none()).collect(),
            ),
        };
        let wanted = !range.is_empty();
        range = clip(range, &within);
        for &j in &siblings {
            range = clear_of(range, &placed[j]);
        }
        if wanted && range.is_empty() {
            // Its words went to earlier siblings: the nearest word still free, if any.
            let free = target_words
                .iter()
                .filter(|w| within.start <= w.start && w.end <= within.end)
                .filter(|w| {
                    siblings
                        .iter()
                        .all(|&j| clear_of((*w).clone(), &placed[j]) == **w)
                })
                .min_by_key(|w| w.start.abs_diff(range.start));
            if let Some(word) = free {
                range = word.clone();
            } else if let Some(taken) =
                take_edge_word(&mut placed, &siblings, &target_words, range.start)
            {
                // None free: a word from the edge of the nearest sibling that has two.
                range = taken;
                for k in 0..placed.len() {
                    if let Some(p) = parents[k] {
                        placed[k] = clip(placed[k].clone(), &placed[p].clone());
                    }
                }
            }
        }
        placed.push(range);
    }
    placed
}

/// The word nearest `at` taken from the edge of the nearest of `siblings` that covers two
/// words or more (the sibling shrinks by it); None when no sibling can spare one.
fn take_edge_word(
    placed: &mut [Range<usize>],
    siblings: &[usize],
    target_words: &[Range<usize>],
    at: usize,
) -> Option<Range<usize>> {
    let inside = |r: &Range<usize>| -> Vec<Range<usize>> {
        target_words
            .iter()
            .filter(|w| r.start <= w.start && w.end <= r.end)
            .cloned()
            .collect()
    };
    let distance = |r: &Range<usize>| at.abs_diff(r.start).min(at.abs_diff(r.end));
    let &j = siblings
        .iter()
        .filter(|&&j| inside(&placed[j]).len() >= 2)
        .min_by_key(|&&j| distance(&placed[j]))?;
    let words = inside(&placed[j]);
    let (first, last) = (&words[0], &words[words.len() - 1]);
    if at.abs_diff(last.end) <= at.abs_diff(first.start) {
        placed[j].end = words[words.len() - 2].end;
        Some(last.clone())
    } else {
        placed[j].start = words[1].start;
        Some(first.clone())
    }
}

/// Each span's enclosing span as the ranges tell it: the innermost earlier span containing
/// it (an empty span at another's edge counts as inside).
pub fn parents(spans: &[Range<usize>]) -> Vec<Option<usize>> {
    let mut stack: Vec<usize> = Vec::new();
    spans
        .iter()
        .enumerate()
        .map(|(i, span)| {
            while let Some(&top) = stack.last() {
                let outer = &spans[top];
                if outer.start <= span.start && span.end <= outer.end {
                    break;
                }
                stack.pop();
            }
            let parent = stack.last().copied();
            stack.push(i);
            parent
        })
        .collect()
}

/// The target's words shared out among `segments` (ranges of the source, in order): each
/// target word goes to the segment of the source words it is aligned to (their median; a
/// word without alignment follows the word before it), made monotone by isotonic regression
/// so the segments keep their order; then every segment gets at least one word where there
/// are as many words as segments. Returns each segment's target byte range.
fn divide(
    segments: &[Range<usize>],
    within: &Range<usize>,
    source_words: &[Range<usize>],
    all_target_words: &[Range<usize>],
    aligned: &[BTreeSet<usize>],
) -> Vec<Range<usize>> {
    // The target words inside the parent, and their indices among all.
    let first_word = all_target_words.partition_point(|w| w.start < within.start);
    let target_words: Vec<Range<usize>> = all_target_words[first_word..]
        .iter()
        .take_while(|w| w.end <= within.end)
        .cloned()
        .collect();
    let (k, m) = (segments.len(), target_words.len());
    if k == 0 {
        return Vec::new();
    }
    let segment_of = |word: &Range<usize>| {
        segments
            .iter()
            .rposition(|s| s.start <= word.start)
            .unwrap_or(0)
    };
    // Per target word, the segments of its source words.
    let mut votes: Vec<Vec<usize>> = vec![Vec::new(); m];
    for (s, targets) in aligned.iter().enumerate() {
        let word = &source_words[s];
        // Only the source words inside these segments vote.
        if !segments
            .iter()
            .any(|seg| seg.start <= word.start && word.start < seg.end)
        {
            continue;
        }
        for &t in targets {
            if let Some(v) = t.checked_sub(first_word).and_then(|t| votes.get_mut(t)) {
                v.push(segment_of(word));
            }
        }
    }
    let mut wanted: Vec<f64> = Vec::with_capacity(m);
    for (t, v) in votes.iter_mut().enumerate() {
        v.sort_unstable();
        let value = match v.get(v.len() / 2) {
            Some(&median) => median as f64,
            None => wanted.last().copied().unwrap_or((t * k / m.max(1)) as f64),
        };
        wanted.push(value);
    }
    let fitted = isotonic(&wanted);
    // starts[j]: the first word of segment j; segment j is words starts[j]..starts[j + 1].
    let mut starts: Vec<usize> = (0..=k)
        .map(|j| {
            if j == k {
                m
            } else {
                fitted.partition_point(|&f| (f.round() as usize).min(k - 1) < j)
            }
        })
        .collect();
    starts[0] = 0;
    if m >= k {
        for j in 1..k {
            starts[j] = starts[j].max(starts[j - 1] + 1);
        }
        for j in (1..k).rev() {
            starts[j] = starts[j].min(starts[j + 1] - 1);
        }
    }
    // Each segment runs from its first word to the next segment's, so the white space
    // between them belongs to one (the first starts at the parent's start, the last ends
    // at its end): no text falls outside the segments.
    let boundary = |j: usize| -> usize {
        match j {
            0 => within.start,
            j if j >= k => within.end,
            j => target_words.get(starts[j]).map_or(within.end, |w| w.start),
        }
    };
    (0..k)
        .map(|j| boundary(j)..boundary(j + 1).max(boundary(j)))
        .collect()
}

/// The non-decreasing sequence closest to `values` in least squares (pool adjacent
/// violators).
fn isotonic(values: &[f64]) -> Vec<f64> {
    // (mean, count) of each pooled run.
    let mut runs: Vec<(f64, usize)> = Vec::with_capacity(values.len());
    for &v in values {
        runs.push((v, 1));
        while runs.len() > 1 && runs[runs.len() - 2].0 > runs[runs.len() - 1].0 {
            let (b, nb) = runs.pop().unwrap_or((0.0, 0));
            let (a, na) = runs.pop().unwrap_or((0.0, 0));
            runs.push(((a * na as f64 + b * nb as f64) / (na + nb) as f64, na + nb));
        }
    }
    runs.into_iter()
        .flat_map(|(mean, n)| std::iter::repeat_n(mean, n))
        .collect()
}

/// For each source word of the text, the target words aligned to it (text-wide indices).
fn global_alignment(
    source_words: &[Range<usize>],
    target_words: &[Range<usize>],
    sentences: &[AlignedSentence],
) -> Vec<BTreeSet<usize>> {
    let first_at = |words: &[Range<usize>], at: usize| words.partition_point(|w| w.start < at);
    let mut aligned = vec![BTreeSet::new(); source_words.len()];
    for sentence in sentences {
        let s0 = first_at(source_words, sentence.source.start);
        let t0 = first_at(target_words, sentence.target.start);
        let s_end = first_at(source_words, sentence.source.end);
        let t_end = first_at(target_words, sentence.target.end);
        for &(s, t) in sentence.alignment {
            if s0 + s < s_end && t0 + t < t_end {
                aligned[s0 + s].insert(t0 + t);
            }
        }
    }
    aligned
}

/// Where one span goes, before nesting is enforced.
fn place(
    source: &str,
    span: &Range<usize>,
    target: &str,
    source_words: &[Range<usize>],
    target_words: &[Range<usize>],
    aligned: &[BTreeSet<usize>],
) -> Range<usize> {
    // An empty span covers no word, even inside one (an empty Word run between two letters).
    let covered: Vec<usize> = (0..source_words.len())
        .filter(|&w| source_words[w].start < span.end && span.start < source_words[w].end)
        .filter(|_| !span.is_empty())
        .collect();
    let mut targets: BTreeSet<usize> = covered
        .iter()
        .flat_map(|&w| aligned[w].iter().copied())
        .collect();
    if covered.is_empty() {
        // Nothing to cover: at the text's edge when it is at one; else after the target of
        // the word before, else before the next's.
        let before = source_words.partition_point(|w| w.end <= span.start);
        if before == source_words.len() {
            return target.len()..target.len();
        }
        if before == 0 {
            return 0..0;
        }
        let after_word = (0..before).rev().find_map(|w| aligned[w].last());
        if let Some(&t) = after_word {
            let at = target_words[t].end;
            return at..at;
        }
        let next = (before..source_words.len()).find_map(|w| aligned[w].first());
        let at = next.map_or_else(
            || proportional(span.start, source.len(), target, target_words),
            |&t| target_words[t].start,
        );
        return at..at;
    }
    if targets.is_empty() {
        // Around the nearest aligned words, never nowhere.
        let (first, last) = (covered[0], covered[covered.len() - 1]);
        let nearest = (1..source_words.len()).find_map(|d| {
            let left = first.checked_sub(d).filter(|&w| !aligned[w].is_empty());
            let right = Some(last + d).filter(|&w| w < aligned.len() && !aligned[w].is_empty());
            left.or(right)
        });
        match nearest {
            Some(w) => targets = aligned[w].clone(),
            None => {
                // No alignment at all: the whole target, the span's only sure place.
                return words_range(target_words, 0..target_words.len()).unwrap_or(0..target.len());
            }
        }
    }
    let (first, last) = (
        *targets.first().unwrap_or(&0),
        *targets.last().unwrap_or(&0),
    );
    let range = words_range(target_words, first..last + 1).unwrap_or(0..0);
    trim_punctuation(&source[span.clone()], target, range)
}

/// The byte range from the start of word `words.start` to the end of word `words.end - 1`.
fn words_range(target_words: &[Range<usize>], words: Range<usize>) -> Option<Range<usize>> {
    let first = target_words.get(words.start)?;
    let last = target_words.get(words.end.checked_sub(1)?)?;
    Some(first.start..last.end)
}

/// A word boundary of `target` at the same relative place as `at` in a source of `len` bytes.
fn proportional(at: usize, len: usize, target: &str, target_words: &[Range<usize>]) -> usize {
    let guess = (at as f64 / len.max(1) as f64 * target.len() as f64) as usize;
    target_words
        .iter()
        .map(|w| w.start)
        .chain(std::iter::once(target.len()))
        .min_by_key(|&b| b.abs_diff(guess))
        .unwrap_or(0)
}

/// Punctuation at either end of a target range that the source span does not have at that
/// end is left outside it ("**gras**," stays "**bold**,"), keeping at least one character.
fn trim_punctuation(source_span: &str, target: &str, range: Range<usize>) -> Range<usize> {
    let is_punct = |c: char| c.is_ascii_punctuation() || "«»“”‘’„…–—¿¡".contains(c);
    let source_span = source_span.trim();
    let mut range = range;
    let text = &target[range.clone()];
    if !source_span.ends_with(is_punct) {
        let kept = text.trim_end_matches(is_punct).len();
        if kept > 0 {
            range.end = range.start + kept;
        }
    }
    let text = &target[range.clone()];
    if !source_span.starts_with(is_punct) {
        let kept = text.trim_start_matches(is_punct).len();
        if kept > 0 {
            range.start = range.end - kept;
        }
    }
    range
}

/// `range` clipped into `within`; a range outside it becomes empty at its nearer edge.
fn clip(range: Range<usize>, within: &Range<usize>) -> Range<usize> {
    let start = range.start.clamp(within.start, within.end);
    let end = range.end.clamp(start, within.end);
    start..end
}

/// `range` made disjoint from `other` (an earlier sibling): cut back to before it, or moved
/// to after it.
fn clear_of(range: Range<usize>, other: &Range<usize>) -> Range<usize> {
    let overlaps = range.start < other.end && other.start < range.end;
    let inside_empty = range.is_empty() && other.start < range.start && range.start < other.end;
    if !overlaps && !inside_empty {
        return range;
    }
    if range.start < other.start {
        range.start..other.start
    } else {
        let start = other.end;
        start..range.end.max(start)
    }
}

#[cfg(test)]
#[allow(clippy::single_range_in_vec_init)]
mod tests {
    use super::*;

    /// Found by the transfer fuzz target: an empty span inside a source word was placed on
    /// that word's whole target, and a cue sharing out the text then overlapped it.
    #[test]
    fn an_empty_span_inside_a_word_stays_empty_beside_segments() {
        let source = "Le chat dort sur le canapé, et le chien aussi.T";
        let target = "he!cat sleps ood rt sur le cdortresu";
        let spans = [33..33, 46..48];
        let alignment = [
            (2, 4),
            (8, 4),
            (9, 1),
            (1, 0),
            (6, 1),
            (5, 0),
            (5, 1),
            (2, 0),
        ];
        let (s, t) = (0..source.len(), 0..target.len());
        let sentence = one_sentence(&s, &t, &alignment);
        for segments in [Segments::None, Segments::TopLevel, Segments::Nested] {
            let placed = transfer(source, &spans, &[None, None], target, &sentence, segments);
            assert!(placed[0].is_empty(), "{segments:?}: {placed:?}");
        }
    }

    fn one_sentence<'a>(
        source: &'a Range<usize>,
        target: &'a Range<usize>,
        alignment: &'a [(usize, usize)],
    ) -> [AlignedSentence<'a>; 1] {
        [AlignedSentence {
            source,
            target,
            alignment,
        }]
    }

    #[test]
    fn a_span_lands_on_the_words_its_words_align_to() {
        let source = "Un chat très noir dort.";
        let target = "A very black cat sleeps.";
        // Un-A chat-cat très-very noir-black dort.-sleeps.
        let alignment = [(0, 0), (1, 3), (2, 1), (3, 2), (4, 4)];
        let (s, t) = (0..source.len(), 0..target.len());
        let sentences = one_sentence(&s, &t, &alignment);
        let bold = source.find("très noir").unwrap();
        let spans = [bold..bold + "très noir".len()];
        let placed = transfer(
            source,
            &spans,
            &parents(&spans),
            target,
            &sentences,
            Segments::None,
        );
        assert_eq!(&target[placed[0].clone()], "very black");
        // The sentence's final period stays outside a span that had none.
        let last = source.find("dort").unwrap();
        let placed = transfer(
            source,
            &[last..last + 4],
            &parents(&[last..last + 4]),
            target,
            &sentences,
            Segments::None,
        );
        assert_eq!(&target[placed[0].clone()], "sleeps");
    }

    #[test]
    fn nested_spans_stay_nested_and_siblings_never_cross() {
        let source = "aa bb cc dd";
        let target = "AA BB CC DD";
        // Crossed: bb→CC, cc→BB; aa→AA, dd→DD.
        let alignment = [(0, 0), (1, 2), (2, 1), (3, 3)];
        let (s, t) = (0..source.len(), 0..target.len());
        let sentences = one_sentence(&s, &t, &alignment);
        // [aa bb] [cc dd], and inside the first, [bb].
        let spans = [0..5, 3..5, 6..11];
        let placed = transfer(
            source,
            &spans,
            &parents(&spans),
            target,
            &sentences,
            Segments::None,
        );
        let parents = parents(&spans);
        assert_eq!(parents, [None, Some(0), None]);
        for (i, p) in parents.iter().enumerate() {
            if let Some(p) = p {
                assert!(placed[*p].start <= placed[i].start && placed[i].end <= placed[*p].end);
            }
        }
        let (a, b) = (&placed[0], &placed[2]);
        assert!(a.end <= b.start || b.end <= a.start, "{placed:?}");
    }

    #[test]
    fn unaligned_and_empty_spans_are_placed_near_their_neighbours() {
        let source = "un deux trois";
        let target = "one two three";
        // "deux" has no alignment; "trois" does.
        let alignment = [(0, 0), (2, 2)];
        let (s, t) = (0..source.len(), 0..target.len());
        let sentences = one_sentence(&s, &t, &alignment);
        let placed = transfer(
            source,
            &[3..7, 7..7],
            &parents(&[3..7, 7..7]),
            target,
            &sentences,
            Segments::None,
        );
        assert_eq!(
            &target[placed[0].clone()],
            "one",
            "the nearest aligned word"
        );
        // The empty span goes after the target of the word before it ("deux": none, so
        // "un"'s "one"), clear of its sibling.
        assert!(placed[1].is_empty() && placed[1].start >= placed[0].end);
        // No alignment at all: still somewhere, and in bounds.
        let placed = transfer(
            source,
            &[3..7],
            &parents(&[3..7]),
            target,
            &one_sentence(&s, &t, &[]),
            Segments::None,
        );
        assert!(placed[0].end <= target.len() && !placed[0].is_empty());
    }

    #[test]
    fn a_span_whose_words_a_sibling_took_goes_to_the_nearest_free_word() {
        let source = "un deux trois";
        let target = "ONE TWO THREE";
        // Both "un" and "deux" align to "ONE".
        let alignment = [(0, 0), (1, 0), (2, 2)];
        let (s, t) = (0..source.len(), 0..target.len());
        let sentences = one_sentence(&s, &t, &alignment);
        let placed = transfer(
            source,
            &[0..2, 3..7],
            &parents(&[0..2, 3..7]),
            target,
            &sentences,
            Segments::None,
        );
        assert_eq!(&target[placed[0].clone()], "ONE");
        assert_eq!(&target[placed[1].clone()], "TWO");
    }

    #[test]
    fn segments_share_the_target_in_order_each_with_a_word() {
        let source = "un deux trois quatre";
        let target = "ONE TWO THREE FOUR";
        // Cues [un deux] [trois] [quatre]; "quatre" aligned before "trois" (crossing), and
        // "deux" aligned to nothing.
        let alignment = [(0, 0), (2, 3), (3, 2)];
        let (s, t) = (0..source.len(), 0..target.len());
        let sentences = one_sentence(&s, &t, &alignment);
        let cues = [0..7, 8..13, 14..20];
        let placed = transfer(
            source,
            &cues,
            &parents(&cues),
            target,
            &sentences,
            Segments::TopLevel,
        );
        let texts: Vec<&str> = placed.iter().map(|r| &target[r.clone()]).collect();
        // In order, every word in exactly one cue, no cue empty.
        assert_eq!(texts.concat(), target, "every byte in one cue, in order");
        assert!(texts.iter().all(|t| !t.trim().is_empty()), "{texts:?}");
        // More cues than words: the later ones are empty, none out of order.
        let placed = transfer(
            source,
            &cues,
            &parents(&cues),
            "ONE",
            &one_sentence(&s, &(0..3), &[]),
            Segments::TopLevel,
        );
        assert_eq!(placed[0], 0..3);
        assert!(
            placed[1..].iter().all(|r| r.is_empty() && r.start == 3),
            "{placed:?}"
        );
        assert_eq!(
            isotonic(&[0.0, 2.0, 1.0, 1.0]),
            [0.0, 4.0 / 3.0, 4.0 / 3.0, 4.0 / 3.0]
        );
    }

    #[test]
    fn a_span_left_with_no_word_takes_one_from_a_sibling_that_has_two() {
        let source = "un deux trois";
        let target = "ONE TWO";
        // Everything aligned to the first span's words.
        let alignment = [(0, 0), (0, 1), (2, 0), (2, 1)];
        let (s, t) = (0..source.len(), 0..target.len());
        let sentences = one_sentence(&s, &t, &alignment);
        let spans = [0..2, 8..13];
        let placed = transfer(
            source,
            &spans,
            &parents(&spans),
            target,
            &sentences,
            Segments::None,
        );
        assert_eq!(&target[placed[0].clone()], "ONE");
        assert_eq!(&target[placed[1].clone()], "TWO");
    }

    #[test]
    fn sentences_index_their_own_words() {
        let source = "Un. Deux trois.";
        let target = "One. Two three.";
        let (s1, t1) = (0..3, 0..4);
        let (s2, t2) = (4..source.len(), 5..target.len());
        let a1 = [(0, 0)];
        let a2 = [(0, 0), (1, 1)];
        let sentences = [
            AlignedSentence {
                source: &s1,
                target: &t1,
                alignment: &a1,
            },
            AlignedSentence {
                source: &s2,
                target: &t2,
                alignment: &a2,
            },
        ];
        let at = source.find("trois").unwrap();
        let placed = transfer(
            source,
            &[at..at + 5],
            &parents(&[at..at + 5]),
            target,
            &sentences,
            Segments::None,
        );
        assert_eq!(&target[placed[0].clone()], "three");
    }
}
