//! `serve --stdio`: JSON lines in, JSON lines out, in order.
//!
//! Three threads: a reader that takes stdin as bytes (never as text, so that one bad byte costs
//! one error answer, not the worker) and always keeps reading, so a client that writes all its
//! requests before reading any answer never deadlocks against a full stdout pipe; the model
//! worker; and this one, which writes each answer as soon as every answer before it is written.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;

use anyhow::Result;
use serde_json::Value;

use super::metrics::Metrics;
use super::worker::{self, Job, Message};
use super::{Refusal, Request, Signals};
use crate::cli::ServeArgs;

/// What the writer receives: answer number `n`, or the worker's end.
enum Output {
    Answer(u64, Value),
    WorkerDone,
}

pub(super) fn serve(args: &ServeArgs) -> Result<()> {
    let (messages, inbox) = mpsc::channel::<Message>();
    let (outputs, answers) = mpsc::channel::<Output>();
    let stopping = Arc::new(AtomicBool::new(false));

    watch_signals(messages.clone(), stopping.clone());

    let limit = args.max_request_bytes;
    let reader_outputs = outputs.clone();
    let reader_stopping = stopping.clone();
    std::thread::spawn(move || read_requests(limit, &messages, &reader_outputs, &reader_stopping));

    let runtime = args.runtime.clone();
    std::thread::spawn(move || {
        let metrics = Metrics::new();
        worker::run(inbox, &runtime, &metrics);
        let _ = outputs.send(Output::WorkerDone);
    });

    write_answers(&answers)
}

/// SIGTERM or SIGINT: stop reading; what was read is answered, then the worker exits 0. A
/// second signal exits at once.
fn watch_signals(messages: mpsc::Sender<Message>, stopping: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        runtime.block_on(async {
            let Ok(mut signals) = Signals::new() else {
                return;
            };
            signals.next().await;
            stopping.store(true, Ordering::SeqCst);
            let _ = messages.send(Message::Stop);
            signals.exit_on_next().await;
        });
    });
}

/// Reads stdin to its end (or to a signal), numbering every request line and handing it to
/// the worker, refusals included, so that answers keep the requests' order; then tells the
/// worker to stop once it has answered them.
fn read_requests(
    limit: usize,
    messages: &mpsc::Sender<Message>,
    outputs: &mpsc::Sender<Output>,
    stopping: &AtomicBool,
) {
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut number = 0u64;
    let mut line_number = 0u64;
    // A read error (EIO, a closed descriptor) ends the input like its end.
    while let Ok(Some(line)) = read_line(&mut input, limit) {
        line_number += 1;
        if stopping.load(Ordering::SeqCst) {
            break;
        }
        let request = match line {
            Line::Complete(bytes) if bytes.trim_ascii().is_empty() => continue,
            Line::Complete(bytes) => Request::parse(&bytes),
            Line::TooLong { length, head } => Err(Refusal {
                id: super::id_of(&String::from_utf8_lossy(&head)),
                message: format!(
                    "invalid request: line {line_number} is {length} bytes, over the \
                     {limit}-byte limit (--max-request-bytes)"
                ),
            }),
        };
        let request = request.map(|mut request| {
            if request.task.is_empty() {
                request.task = "translate".into();
            }
            request
        });
        let outputs = outputs.clone();
        let reply = Box::new(move |answer: worker::Answer| {
            let _ = outputs.send(Output::Answer(number, answer.body));
        });
        number += 1;
        if messages
            .send(Message::Job(Box::new(Job { request, reply })))
            .is_err()
        {
            return;
        }
    }
    // The signal watcher holds the queue open too: say that nothing more comes.
    let _ = messages.send(Message::Stop);
}

enum Line {
    /// The line's bytes, without its `\n`.
    Complete(Vec<u8>),
    /// A line over the limit, read to its end and dropped but for its first `limit` bytes
    /// (where an id may be read).
    TooLong { length: usize, head: Vec<u8> },
}

/// One line of at most `limit` bytes, never holding more than that in memory.
fn read_line(input: &mut impl BufRead, limit: usize) -> std::io::Result<Option<Line>> {
    let mut line = Vec::new();
    let mut length = 0usize;
    let mut started = false;
    let mut last = 0u8;
    loop {
        let buffer = match input.fill_buf() {
            Ok(buffer) => buffer,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        if buffer.is_empty() {
            break;
        }
        started = true;
        let (piece, ends) = match buffer.iter().position(|&b| b == b'\n') {
            Some(i) => (&buffer[..i], true),
            None => (buffer, false),
        };
        length += piece.len();
        if let Some(&byte) = piece.last() {
            last = byte;
        }
        let room = (limit + 1).saturating_sub(line.len());
        line.extend_from_slice(&piece[..piece.len().min(room)]);
        let consumed = piece.len() + usize::from(ends);
        input.consume(consumed);
        if ends {
            break;
        }
    }
    if !started {
        return Ok(None);
    }
    // A `\r\n` ending counts as the line's end, not its text.
    if last == b'\r' {
        length -= 1;
        line.truncate(length);
    }
    if length > limit {
        line.truncate(limit);
        return Ok(Some(Line::TooLong { length, head: line }));
    }
    Ok(Some(Line::Complete(line)))
}

/// Writes answers in request order, each flushed as soon as those before it are out; ends
/// when the worker has answered all it will.
fn write_answers(answers: &mpsc::Receiver<Output>) -> Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut next = 0u64;
    let mut waiting = BTreeMap::new();
    while let Ok(output) = answers.recv() {
        match output {
            Output::Answer(number, body) => {
                waiting.insert(number, body);
            }
            Output::WorkerDone => break,
        }
        while let Some(body) = waiting.remove(&next) {
            serde_json::to_writer(&mut out, &body)?;
            out.write_all(b"\n")?;
            out.flush()?;
            next += 1;
        }
    }
    // Should a request ever go unanswered, the answers after it are still written, in order,
    // rather than lost.
    for body in waiting.into_values() {
        serde_json::to_writer(&mut out, &body)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8], limit: usize) -> Vec<Result<String, (usize, String)>> {
        // A small buffer, so that lines span several fills.
        let mut reader = std::io::BufReader::with_capacity(3, input);
        let mut out = Vec::new();
        while let Some(line) = read_line(&mut reader, limit).unwrap() {
            out.push(match line {
                Line::Complete(bytes) => Ok(String::from_utf8(bytes).unwrap()),
                Line::TooLong { length, head } => Err((length, String::from_utf8(head).unwrap())),
            });
        }
        out
    }

    #[test]
    fn lines_over_the_limit_are_measured_and_cut_to_their_head() {
        assert_eq!(
            lines(b"abcd\r\nabcdefgh\nabcde\r\n\nxy", 5),
            vec![
                Ok("abcd".into()),
                Err((8, "abcde".into())),
                Ok("abcde".into()),
                Ok(String::new()),
                Ok("xy".into()),
            ]
        );
        assert_eq!(lines(b"abcdef\r\n", 5), vec![Err((6, "abcde".into()))]);
        assert!(lines(b"", 5).is_empty());
    }
}
