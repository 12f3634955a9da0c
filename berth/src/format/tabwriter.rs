//! Elastic tabstops as docker's tabwriter computes them for tables
//! (`tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)`): a tab ends a cell; consecutive lines
//! that have a cell in column j form a block whose column width is the widest cell plus
//! 3, at least 10; cells are padded with spaces; the last cell of a line (the text after
//! its last tab) belongs to no column and is never padded. Widths are display widths
//! (East Asian wide characters count 2).

use unicode_width::UnicodeWidthStr;

pub const MIN_WIDTH: usize = 10;
pub const PADDING: usize = 3;

struct Cell<'t> {
    text: &'t str,
    width: usize,
}

/// Aligns `text` (lines of tab-separated cells) as docker's tables are aligned.
pub fn align(text: &str) -> String {
    let lines: Vec<Vec<Cell>> = text
        .split('\n')
        .map(|line| {
            if line.is_empty() {
                return Vec::new();
            }
            line.split('\t')
                .map(|t| Cell {
                    text: t,
                    width: UnicodeWidthStr::width(t),
                })
                .collect()
        })
        .collect();
    let mut out = String::with_capacity(text.len() + text.len() / 2);
    let mut widths = Vec::new();
    format(&lines, &mut widths, 0, lines.len(), &mut out);
    out
}

/// Cells in `line` that end with a tab: all but the last.
fn columns(line: &[Cell]) -> usize {
    line.len().saturating_sub(1)
}

fn format(lines: &[Vec<Cell>], widths: &mut Vec<usize>, line0: usize, line1: usize, out: &mut String) {
    let column = widths.len();
    let mut start = line0;
    let mut this = line0;
    while this < line1 {
        if column >= columns(&lines[this]) {
            this += 1;
            continue;
        }
        // Lines before the block are done at this depth.
        write_lines(lines, widths, start, this, out);
        start = this;
        let mut width = MIN_WIDTH;
        while this < line1 && column < columns(&lines[this]) {
            width = width.max(lines[this][column].width + PADDING);
            this += 1;
        }
        widths.push(width);
        format(lines, widths, start, this, out);
        widths.pop();
        start = this;
    }
    write_lines(lines, widths, start, line1, out);
}

fn write_lines(lines: &[Vec<Cell>], widths: &[usize], line0: usize, line1: usize, out: &mut String) {
    for (i, line) in lines.iter().enumerate().take(line1).skip(line0) {
        for (j, cell) in line.iter().enumerate() {
            out.push_str(cell.text);
            if let Some(w) = widths.get(j) {
                out.extend(std::iter::repeat_n(' ', w.saturating_sub(cell.width)));
            }
        }
        if i + 1 < lines.len() {
            out.push('\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::align;

    #[test]
    fn golden_tables() {
        let cases: &[(&str, &str)] = &[
            // min width 10, padding 3, last cell unpadded
            ("NAMES\tIMAGE\nweb\tbusybox\n", "NAMES     IMAGE\nweb       busybox\n"),
            (
                "NAMES\tSTATUS\na-much-longer-name\tUp\n",
                "NAMES                STATUS\na-much-longer-name   Up\n",
            ),
            // empty cells are padded; an empty last cell adds nothing
            ("A\t\tC\nx\t\t\n", "A                   C\nx                   \n"),
            // a line without tabs ends the block: columns on each side are sized apart
            (
                "a\tb\nlong-long-long-long\tc\nplain\nx\ty\n",
                "a                     b\nlong-long-long-long   c\nplain\nx         y\n",
            ),
            // a short line inside a block only ends the deeper columns
            (
                "a\tb\tc\naaaaaaaaaaaaaaa\tb\nx\tyyyyyyyyyyyyyyyyyyy\tz\n",
                "a                 b         c\naaaaaaaaaaaaaaa   b\nx                 yyyyyyyyyyyyyyyyyyy   z\n",
            ),
            // no trailing newline: the last line ends as given
            ("a\tb", "a         b"),
            // wide characters count twice
            ("名前\tx\n", "名前      x\n"),
            ("", ""),
        ];
        for (input, want) in cases {
            assert_eq!(align(input), *want, "input {input:?}");
        }
    }
}
