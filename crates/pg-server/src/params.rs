//! Bound parameter values, in the text or binary encoding of their PostgreSQL type, as DuckDB
//! values. Integers, floats and booleans are bound typed; the other types as their PostgreSQL
//! text, which DuckDB casts to the type the query gives the parameter.

use duckdb::types::Value;
use execution_context::uuid;
use pgwire::api::Type;

/// Decodes one parameter (`None`: SQL NULL).
pub fn decode(bytes: Option<&[u8]>, ty: &Type, binary: bool) -> Result<Value, String> {
    let Some(bytes) = bytes else {
        return Ok(Value::Null);
    };
    if binary {
        decode_binary(bytes, ty)
    } else {
        let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))?;
        decode_text(text, ty)
    }
}

fn decode_text(text: &str, ty: &Type) -> Result<Value, String> {
    let bad = |e: &dyn std::fmt::Display| format!("`{text}` is not a valid {}: {e}", ty.name());
    let t = text.trim();
    Ok(match *ty {
        Type::INT2 => Value::SmallInt(t.parse().map_err(|e| bad(&e))?),
        Type::INT4 => Value::Int(t.parse().map_err(|e| bad(&e))?),
        Type::INT8 => Value::BigInt(t.parse().map_err(|e| bad(&e))?),
        Type::FLOAT4 => Value::Float(t.parse().map_err(|e| bad(&e))?),
        Type::FLOAT8 => Value::Double(t.parse().map_err(|e| bad(&e))?),
        Type::BOOL => Value::Boolean(match t.to_ascii_lowercase().as_str() {
            "t" | "true" | "1" | "on" | "yes" | "y" => true,
            "f" | "false" | "0" | "off" | "no" | "n" => false,
            _ => return Err(bad(&"expected true or false")),
        }),
        Type::BYTEA => Value::Blob(match text.strip_prefix("\\x") {
            Some(hex) => (0..hex.len() / 2)
                .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16))
                .collect::<Result<_, _>>()
                .map_err(|e| bad(&e))?,
            None => text.as_bytes().to_vec(),
        }),
        Type::DATE => Value::Text(jdbc_date(text).map_or_else(|| text.to_owned(), |(d, _)| d)),
        // Clients may send a uuid as bare hex or in braces; its canonical form either way.
        Type::UUID => match uuid::parse(t) {
            Some(bytes) => Value::Text(uuid::string(&bytes)),
            None => return Err(bad(&"expected 32 hexadecimal digits")),
        },
        _ => Value::Text(
            jdbc_date(text).map_or_else(|| text.to_owned(), |(d, z)| format!("{d} 00:00:00{z}")),
        ),
    })
}

/// pgJDBC's `setDate` sends `2024-01-01 +00` (a date with a zone) untyped, which no timestamp
/// parser takes: the date and the zone, to put midnight between them.
fn jdbc_date(text: &str) -> Option<(String, String)> {
    let (date, zone) = text.split_once(' ')?;
    let date_ok = date.len() == 10
        && date.chars().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                c == '-'
            } else {
                c.is_ascii_digit()
            }
        });
    let zone_ok = zone.len() >= 3
        && zone.starts_with(['+', '-'])
        && zone[1..].chars().all(|c| c.is_ascii_digit() || c == ':');
    (date_ok && zone_ok).then(|| (date.to_owned(), zone.to_owned()))
}

fn take<const N: usize>(bytes: &[u8], ty: &Type) -> Result<[u8; N], String> {
    bytes
        .try_into()
        .map_err(|_| format!("{} bytes are not a binary {}", bytes.len(), ty.name()))
}

/// Days and microseconds are counted from 2000-01-01 in PostgreSQL's binary forms.
fn epoch() -> chrono::NaiveDateTime {
    chrono::NaiveDate::from_ymd_opt(2000, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .unwrap_or_default()
}

fn decode_binary(bytes: &[u8], ty: &Type) -> Result<Value, String> {
    Ok(match *ty {
        Type::BOOL => Value::Boolean(take::<1>(bytes, ty)?[0] != 0),
        Type::INT2 => Value::SmallInt(i16::from_be_bytes(take(bytes, ty)?)),
        Type::INT4 => Value::Int(i32::from_be_bytes(take(bytes, ty)?)),
        Type::INT8 => Value::BigInt(i64::from_be_bytes(take(bytes, ty)?)),
        Type::OID => Value::BigInt(u32::from_be_bytes(take(bytes, ty)?).into()),
        Type::FLOAT4 => Value::Float(f32::from_be_bytes(take(bytes, ty)?)),
        Type::FLOAT8 => Value::Double(f64::from_be_bytes(take(bytes, ty)?)),
        Type::NUMERIC => Value::Text(numeric(bytes)?),
        Type::DATE => {
            let days = i32::from_be_bytes(take(bytes, ty)?);
            let date = epoch().date() + chrono::Duration::days(days.into());
            Value::Text(date.format("%Y-%m-%d").to_string())
        }
        Type::TIME => {
            let us = i64::from_be_bytes(take(bytes, ty)?);
            let t = epoch() + chrono::Duration::microseconds(us);
            Value::Text(t.format("%H:%M:%S%.6f").to_string())
        }
        Type::TIMESTAMP | Type::TIMESTAMPTZ => {
            let us = i64::from_be_bytes(take(bytes, ty)?);
            let t = epoch() + chrono::Duration::microseconds(us);
            let zone = if *ty == Type::TIMESTAMPTZ { "+00" } else { "" };
            Value::Text(format!("{}{zone}", t.format("%Y-%m-%d %H:%M:%S%.6f")))
        }
        Type::INTERVAL => {
            let b: [u8; 16] = take(bytes, ty)?;
            let us = i64::from_be_bytes(b[0..8].try_into().unwrap_or_default());
            let days = i32::from_be_bytes(b[8..12].try_into().unwrap_or_default());
            let months = i32::from_be_bytes(b[12..16].try_into().unwrap_or_default());
            Value::Interval {
                months,
                days,
                nanos: us.saturating_mul(1000),
            }
        }
        Type::UUID => {
            let b: [u8; 16] = take(bytes, ty)?;
            Value::Text(uuid::string(&b))
        }
        Type::BYTEA => Value::Blob(bytes.to_vec()),
        // jsonb's binary form is a version byte (1) before the text.
        Type::JSONB => Value::Text(
            String::from_utf8(bytes.get(1..).unwrap_or_default().to_vec())
                .map_err(|e| e.to_string())?,
        ),
        _ => Value::Text(
            String::from_utf8(bytes.to_vec())
                .map_err(|e| format!("binary {} parameters are not supported: {e}", ty.name()))?,
        ),
    })
}

/// PostgreSQL's binary numeric (base-10000 digits) as decimal text.
fn numeric(bytes: &[u8]) -> Result<String, String> {
    let word = |i: usize| -> Result<i16, String> {
        bytes
            .get(2 * i..2 * i + 2)
            .map(|b| i16::from_be_bytes([b[0], b[1]]))
            .ok_or_else(|| "truncated binary numeric".to_owned())
    };
    let ndigits = usize::try_from(word(0)?).map_err(|_| "bad numeric")?;
    let weight = i32::from(word(1)?);
    let sign = word(2)? as u16;
    let dscale = usize::try_from(word(3)?).map_err(|_| "bad numeric")?;
    if sign == 0xC000 {
        return Ok("NaN".to_owned());
    }
    let digits = (0..ndigits)
        .map(|i| word(4 + i))
        .collect::<Result<Vec<_>, _>>()?;
    let digit = |pos: i32| -> i16 {
        usize::try_from(pos)
            .ok()
            .and_then(|p| digits.get(p).copied())
            .unwrap_or(0)
    };
    let mut int = String::new();
    for pos in 0..=weight {
        let d = digit(pos);
        if int.is_empty() {
            if d != 0 {
                int = d.to_string();
            }
        } else {
            int.push_str(&format!("{d:04}"));
        }
    }
    if int.is_empty() {
        int.push('0');
    }
    let mut frac = String::new();
    let mut pos = weight + 1;
    while frac.len() < dscale {
        frac.push_str(&format!("{:04}", digit(pos)));
        pos += 1;
    }
    frac.truncate(dscale);
    let sign = if sign == 0x4000 { "-" } else { "" };
    Ok(if frac.is_empty() {
        format!("{sign}{int}")
    } else {
        format!("{sign}{int}.{frac}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric_bytes(words: &[i16]) -> Vec<u8> {
        words.iter().flat_map(|w| w.to_be_bytes()).collect()
    }

    #[test]
    fn binary_numerics_become_decimal_text() {
        // 12345.678: digits 1, 2345, 6780; weight 1; dscale 3.
        let b = numeric_bytes(&[3, 1, 0, 3, 1, 2345, 6780]);
        assert_eq!(numeric(&b).unwrap(), "12345.678");
        let b = numeric_bytes(&[1, -1, 0x4000u16 as i16, 2, 500]);
        assert_eq!(numeric(&b).unwrap(), "-0.05");
        assert_eq!(numeric(&numeric_bytes(&[0, 0, 0, 0])).unwrap(), "0");
    }

    #[test]
    fn binary_dates_and_timestamps_count_from_2000() {
        let v = decode(Some(&1i32.to_be_bytes()), &Type::DATE, true).unwrap();
        assert_eq!(v, Value::Text("2000-01-02".into()));
        let us = 86_400_000_000i64 + 1_500_000;
        let v = decode(Some(&us.to_be_bytes()), &Type::TIMESTAMPTZ, true).unwrap();
        assert_eq!(v, Value::Text("2000-01-02 00:00:01.500000+00".into()));
    }

    #[test]
    fn text_parameters_parse_by_type() {
        assert_eq!(
            decode(Some(b"42"), &Type::INT4, false).unwrap(),
            Value::Int(42)
        );
        assert!(decode(Some(b"x"), &Type::INT8, false).is_err());
        assert_eq!(
            decode(
                Some(b"{12345678123456781234567812345678}"),
                &Type::UUID,
                false
            )
            .unwrap(),
            Value::Text("12345678-1234-5678-1234-567812345678".into())
        );
        assert!(decode(Some(b"nope"), &Type::UUID, false).is_err());
        assert_eq!(
            decode(Some(b"\\x0aff"), &Type::BYTEA, false).unwrap(),
            Value::Blob(vec![10, 255])
        );
        assert_eq!(decode(None, &Type::INT4, false).unwrap(), Value::Null);
        assert_eq!(
            decode(Some(b"2024-01-01 +00"), &Type::TEXT, false).unwrap(),
            Value::Text("2024-01-01 00:00:00+00".into())
        );
        assert_eq!(
            decode(Some(b"2024-01-01 +00"), &Type::DATE, false).unwrap(),
            Value::Text("2024-01-01".into())
        );
    }
}
