//! Terminal output helpers.

use std::io::IsTerminal;

use pipeline::Problems;

/// Whether stdout is an interactive terminal (spinners and colours allowed).
pub fn stdout_is_terminal() -> bool {
    std::io::stdout().is_terminal()
}

/// Prints problems to stderr, one per line, errors first, with `file` as context. A closed
/// stderr is ignored.
pub fn print_problems(file: &str, problems: &Problems) {
    use std::io::Write as _;
    let mut sorted: Vec<_> = problems.0.iter().collect();
    sorted.sort_by_key(|p| p.severity);
    let mut stderr = std::io::stderr().lock();
    for problem in sorted {
        let _ = writeln!(stderr, "{file}: {problem}");
    }
}

/// `1234567` -> `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Milliseconds as a short human duration.
pub fn duration(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.2}s", ms as f64 / 1000.0)
    } else {
        format!("{}m{:02}s", ms / 60_000, (ms % 60_000) / 1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_numbers_and_durations() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(5_000_000), "5,000,000");
        assert_eq!(duration(42), "42ms");
        assert_eq!(duration(1234), "1.23s");
        assert_eq!(duration(125_000), "2m05s");
    }
}
