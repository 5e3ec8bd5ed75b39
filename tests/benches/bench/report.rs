//! The benchmark's figures: printed as a table and written to BENCHMARKS.md.

use std::fmt::Write;

/// One figure.
pub struct Figure {
    pub metric: String,
    pub value: String,
    pub note: String,
}

/// A section of figures.
pub struct Section {
    pub title: String,
    pub figures: Vec<Figure>,
}

impl Section {
    pub fn new(title: &str) -> Self {
        Self {
            title: title.to_owned(),
            figures: Vec::new(),
        }
    }

    pub fn add(
        &mut self,
        metric: impl Into<String>,
        value: impl Into<String>,
        note: impl Into<String>,
    ) {
        self.figures.push(Figure {
            metric: metric.into(),
            value: value.into(),
            note: note.into(),
        });
    }
}

/// Markdown for every section, under a preamble.
pub fn markdown(preamble: &str, sections: &[Section]) -> String {
    let mut out = String::from(preamble);
    let _ = writeln!(
        out,
        "\n## Against the targets\n\nEvery figure with a target, gathered from the sections \
         below.\n\n| metric | value | target |\n| --- | ---: | --- |"
    );
    for (section, figure) in sections
        .iter()
        .flat_map(|s| s.figures.iter().map(move |f| (s, f)))
        .filter(|(_, f)| f.note.contains("target"))
    {
        let _ = writeln!(
            out,
            "| {}: {} | {} | {} |",
            section.title, figure.metric, figure.value, figure.note
        );
    }
    for section in sections {
        let _ = writeln!(
            out,
            "\n## {}\n\n| metric | value | note |\n| --- | ---: | --- |",
            section.title
        );
        for figure in &section.figures {
            let _ = writeln!(
                out,
                "| {} | {} | {} |",
                figure.metric, figure.value, figure.note
            );
        }
    }
    out
}

/// Thousands separators for rates.
pub fn per_second(value: f64) -> String {
    let whole = value.round() as u64;
    let text = whole.to_string();
    let mut grouped = String::new();
    for (i, c) in text.chars().enumerate() {
        if i > 0 && (text.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{grouped}/s")
}

/// The median of `values` (which it sorts).
pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        0.0
    } else if !n.is_multiple_of(2) {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// The `q` quantile (0..=1) of sorted `values`.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// `a / b` at the median and at p99, of sorted response times: "0.71 and 1.06".
pub fn p50_p99_ratio(a: &[f64], b: &[f64]) -> String {
    format!(
        "{:.2} and {:.2}",
        quantile(a, 0.5) / quantile(b, 0.5),
        quantile(a, 0.99) / quantile(b, 0.99)
    )
}
