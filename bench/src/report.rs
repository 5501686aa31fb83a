//! Markdown tables of the results, printed as they are so they paste into BENCHMARKS.md.

use std::fmt::Write as _;
use std::time::Duration;

use crate::load::LoadResult;
use crate::stats::format_duration;

/// A table whose columns are padded to their widest cell.
pub struct Table {
    header: Vec<String>,
    right_aligned: Vec<bool>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// Columns named with a leading `>` are right-aligned (numbers).
    pub fn new(columns: &[&str]) -> Table {
        Table {
            header: columns
                .iter()
                .map(|c| c.trim_start_matches('>').to_string())
                .collect(),
            right_aligned: columns.iter().map(|c| c.starts_with('>')).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn render(&self) -> String {
        let columns = self.header.len();
        let width = |column: usize| {
            std::iter::once(&self.header)
                .chain(&self.rows)
                .filter_map(|row| row.get(column))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
                .max(3)
        };
        let widths: Vec<usize> = (0..columns).map(width).collect();
        let mut out = String::new();
        let line = |out: &mut String, cells: &[String]| {
            out.push('|');
            for (column, width) in widths.iter().enumerate() {
                let cell = cells.get(column).map(String::as_str).unwrap_or("");
                let pad = width.saturating_sub(cell.chars().count());
                if self.right_aligned[column] {
                    let _ = write!(out, " {}{cell} |", " ".repeat(pad));
                } else {
                    let _ = write!(out, " {cell}{} |", " ".repeat(pad));
                }
            }
            out.push('\n');
        };
        line(&mut out, &self.header);
        out.push('|');
        for (column, width) in widths.iter().enumerate() {
            let dashes = "-".repeat(*width);
            if self.right_aligned[column] {
                let _ = write!(out, " {}: |", &dashes[1..]);
            } else {
                let _ = write!(out, " {dashes} |");
            }
        }
        out.push('\n');
        for row in &self.rows {
            line(&mut out, row);
        }
        out
    }
}

pub fn duration_cell(duration: Option<Duration>) -> String {
    duration
        .map(format_duration)
        .unwrap_or_else(|| "-".to_string())
}

pub fn rate_cell(result: &LoadResult) -> String {
    thousands(result.ops_per_second().round() as u64)
}

/// `12345` → `12,345`.
pub fn thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::new();
    for (position, digit) in digits.chars().enumerate() {
        if position > 0 && (digits.len() - position).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// `a / b` as `0.43×`, or `-` when either side is missing.
pub fn ratio_cell(numerator: Option<f64>, denominator: Option<f64>) -> String {
    match (numerator, denominator) {
        (Some(n), Some(d)) if d > 0.0 => format!("{:.2}×", n / d),
        _ => "-".to_string(),
    }
}

pub fn seconds(duration: Option<Duration>) -> Option<f64> {
    duration.map(|d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_pad_columns_and_mark_numeric_alignment() {
        let mut table = Table::new(&["name", ">value"]);
        table.row(vec!["a".into(), "1".into()]);
        table.row(vec!["longer".into(), "12,345".into()]);
        let expected = "\
| name   |  value |
| ------ | -----: |
| a      |      1 |
| longer | 12,345 |
";
        assert_eq!(table.render(), expected);
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(ratio_cell(Some(1.0), Some(4.0)), "0.25×");
        assert_eq!(ratio_cell(Some(1.0), Some(0.0)), "-");
        assert_eq!(ratio_cell(None, Some(1.0)), "-");
    }
}
