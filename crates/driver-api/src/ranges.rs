//! Parallel reads by ranges of an integer column (`partition_on` + `partitions`), shared by the
//! SQL extractors: MIN..=MAX of the column cut into contiguous ranges, each read by its own
//! connection. The conditions are plain SQL that MySQL and PostgreSQL read alike.

/// One range of `partition_on`: `column >= start AND column < end` (`<= end` for the last one);
/// the first also takes the rows where the column is NULL, so that every row is read once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntRange {
    /// First value of the range.
    pub start: i128,
    /// Exclusive end, or the inclusive MAX for the last range.
    pub end: i128,
    /// Whether this is the first range (it takes the NULLs).
    pub first: bool,
    /// Whether this is the last range (its end is inclusive).
    pub last: bool,
}

impl IntRange {
    /// The range as an SQL condition on `column`, an identifier already quoted for the dialect.
    pub fn condition(&self, column: &str) -> String {
        let upper = if self.last {
            format!("{column} <= {}", self.end)
        } else {
            format!("{column} < {}", self.end)
        };
        let range = format!("{column} >= {} AND {upper}", self.start);
        if self.first {
            format!("(({range}) OR {column} IS NULL)")
        } else {
            format!("({range})")
        }
    }
}

/// Cuts `lo..=hi` into at most `n` contiguous ranges of equal width (never more ranges than
/// values). `None` bounds (no non-NULL value) give no ranges: read everything in one statement.
pub fn split(lo: Option<i128>, hi: Option<i128>, n: u32) -> Vec<IntRange> {
    let (Some(lo), Some(hi)) = (lo, hi) else {
        return Vec::new();
    };
    if hi < lo {
        return Vec::new();
    }
    let span = hi - lo + 1;
    let n = i128::from(n).min(span).max(1);
    let step = (span + n - 1) / n;
    let mut ranges = Vec::new();
    let mut start = lo;
    while start <= hi {
        let end = (start + step).min(hi + 1);
        let last = end > hi;
        ranges.push(IntRange {
            start,
            end: if last { hi } else { end },
            first: ranges.is_empty(),
            last,
        });
        start = end;
    }
    ranges
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_every_value_once_and_nulls_in_the_first() {
        let ranges = split(Some(1), Some(10), 3);
        assert_eq!(ranges.len(), 3);
        assert_eq!(
            ranges[0].condition("`id`"),
            "((`id` >= 1 AND `id` < 5) OR `id` IS NULL)"
        );
        assert_eq!(
            ranges[1].condition("\"id\""),
            "(\"id\" >= 5 AND \"id\" < 9)"
        );
        assert_eq!(ranges[2].condition("id"), "(id >= 9 AND id <= 10)");
        let covered: Vec<i128> = (1..=10)
            .filter(|v| {
                ranges
                    .iter()
                    .filter(|r| *v >= r.start && (*v < r.end || (r.last && *v <= r.end)))
                    .count()
                    == 1
            })
            .collect();
        assert_eq!(covered.len(), 10);
        assert_eq!(
            split(Some(5), Some(6), 8).len(),
            2,
            "no more ranges than values"
        );
        assert!(split(None, None, 4).is_empty());
        assert_eq!(
            split(Some(-3), Some(-3), 4)[0].condition("c"),
            "((c >= -3 AND c <= -3) OR c IS NULL)"
        );
    }
}
