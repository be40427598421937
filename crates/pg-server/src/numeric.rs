//! PostgreSQL `numeric` from decimal text, in both wire formats. DuckDB's DECIMAL, HUGEINT and
//! UBIGINT values travel as numeric; a 128-bit integer does not fit `rust_decimal`, so the binary
//! form is written here from the digits.

use std::error::Error;

use bytes::{BufMut, BytesMut};
use pgwire::api::Type;
use postgres_types::{IsNull, ToSql, to_sql_checked};

/// A decimal number as text: optional `-`, digits, optional `.` and digits.
#[derive(Debug)]
pub struct Numeric(pub String);

impl ToSql for Numeric {
    fn to_sql(&self, _: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        let (ndigits, weight, sign, dscale, digits) =
            binary_parts(&self.0).ok_or_else(|| format!("`{}` is not a decimal number", self.0))?;
        out.put_i16(ndigits);
        out.put_i16(weight);
        out.put_u16(sign);
        out.put_u16(dscale);
        for d in digits {
            out.put_i16(d);
        }
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::NUMERIC
    }

    to_sql_checked!();
}

text_as_is!(Numeric);

/// `(ndigits, weight, sign, dscale, base-10000 digits)` of PostgreSQL's binary numeric.
fn binary_parts(text: &str) -> Option<(i16, i16, u16, u16, Vec<i16>)> {
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (int, frac) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    if int.is_empty() && frac.is_empty()
        || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let int_pad = (4 - int.len() % 4) % 4;
    let frac_pad = (4 - frac.len() % 4) % 4;
    let digits: Vec<u8> = std::iter::repeat_n(b'0', int_pad)
        .chain(int.bytes())
        .chain(frac.bytes())
        .chain(std::iter::repeat_n(b'0', frac_pad))
        .collect();
    let mut groups: Vec<i16> = digits
        .chunks(4)
        .map(|c| c.iter().fold(0i16, |acc, d| acc * 10 + i16::from(d - b'0')))
        .collect();
    let mut weight = i16::try_from((int.len() + int_pad) / 4).ok()? - 1;
    let leading = groups.iter().take_while(|&&g| g == 0).count();
    groups.drain(..leading);
    weight -= i16::try_from(leading).ok()?;
    while groups.last() == Some(&0) {
        groups.pop();
    }
    let dscale = u16::try_from(frac.len()).ok()?;
    if groups.is_empty() {
        return Some((0, 0, 0, dscale, groups));
    }
    let sign = if negative { 0x4000 } else { 0 };
    Some((
        i16::try_from(groups.len()).ok()?,
        weight,
        sign,
        dscale,
        groups,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_numeric_matches_postgres_layout() {
        assert_eq!(
            binary_parts("-123.4500"),
            Some((2, 0, 0x4000, 4, vec![123, 4500]))
        );
        assert_eq!(binary_parts("0.0001"), Some((1, -1, 0, 4, vec![1])));
        assert_eq!(binary_parts("10000"), Some((1, 1, 0, 0, vec![1])));
        assert_eq!(binary_parts("0.00"), Some((0, 0, 0, 2, vec![])));
        assert_eq!(
            binary_parts("170141183460469231731687303715884105727").map(|p| p.0),
            Some(10)
        );
        assert_eq!(binary_parts("1e5"), None);
    }
}
