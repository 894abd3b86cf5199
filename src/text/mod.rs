//! TEMPORARY shim until the segmentation module lands.
use std::ops::Range;

pub struct LineLayout {
    start: usize,
    end: usize,
}

impl LineLayout {
    pub fn of(line: &str) -> Self {
        let start = line.len() - line.trim_start().len();
        let end = line.trim_end().len().max(start);
        Self { start, end }
    }
    pub fn content<'a>(&self, line: &'a str) -> &'a str {
        &line[self.start..self.end]
    }
    pub fn reassemble(&self, line: &str, translated: &str) -> String {
        format!("{}{}", &line[..self.start], translated)
    }
}

pub fn split_sentences(text: &str) -> Vec<Range<usize>> {
    if text.trim().is_empty() {
        vec![]
    } else {
        vec![0..text.len()]
    }
}

pub fn split_long(
    sentence: &str,
    _max: usize,
    _count: &dyn Fn(&str) -> usize,
) -> Vec<Range<usize>> {
    vec![0..sentence.len()]
}
