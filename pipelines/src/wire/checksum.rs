//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624), used by IPv4, ICMP, UDP and TCP.

/// Adds `data` as big-endian 16-bit words (an odd last byte is padded with zero) to `acc`, unfolded.
pub fn sum(mut acc: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc = acc.wrapping_add(u16::from_be_bytes([c[0], c[1]]) as u32);
        // Fold early enough that a 64 KiB packet cannot overflow.
        if acc > 0xffff_0000 {
            acc = (acc & 0xffff) + (acc >> 16);
        }
    }
    if let [b] = chunks.remainder() {
        acc = acc.wrapping_add((*b as u32) << 8);
    }
    acc
}

/// Folds a 32-bit accumulator into 16 bits.
pub fn fold(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// The checksum field value for `data` (the ones' complement of the folded sum).
pub fn checksum(data: &[u8]) -> u16 {
    !fold(sum(0, data))
}

/// The sum of the IPv4 pseudo-header.
pub fn pseudo_v4(src: [u8; 4], dst: [u8; 4], proto: u8, len: u16) -> u32 {
    let mut acc = sum(0, &src);
    acc = sum(acc, &dst);
    acc + proto as u32 + len as u32
}

/// The sum of the IPv6 pseudo-header.
pub fn pseudo_v6(src: [u8; 16], dst: [u8; 16], next_header: u8, len: u32) -> u32 {
    let mut acc = sum(0, &src);
    acc = sum(acc, &dst);
    acc + (len >> 16) + (len & 0xffff) + next_header as u32
}

/// The new checksum after a 16-bit word of the covered data changed from `old` to `new` (RFC 1624, eqn 3:
/// HC' = ~(~HC + ~m + m')). Used for TTL decrement and NAT rewrites without re-summing the packet.
#[inline]
pub fn update16(check: u16, old: u16, new: u16) -> u16 {
    let acc = (!check as u32) + (!old as u32 & 0xffff) + new as u32;
    !fold(acc)
}

/// As [`update16`] for a 32-bit word (an IPv4 address).
#[inline]
pub fn update32(check: u16, old: u32, new: u32) -> u16 {
    let c = update16(check, (old >> 16) as u16, (new >> 16) as u16);
    update16(c, old as u16, new as u16)
}

/// What changing a 32-bit word from `old` to `new` adds to a ones'-complement sum, unfolded: given to
/// [`adjust`] for each checksum that covers it (an address in the IPv4 header and in the L4 pseudo-header:
/// one difference, two checksums).
#[inline]
pub fn delta32(old: u32, new: u32) -> u32 {
    (!old >> 16) + (!old & 0xffff) + (new >> 16) + (new & 0xffff)
}

/// [`update16`] for an unfolded difference (of [`delta32`], plus `!old + new` words): RFC 1624's eqn 3
/// with every changed word at once, folded once.
#[inline]
pub fn adjust(check: u16, delta: u32) -> u16 {
    !fold((!check as u32) + delta)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_difference_for_every_changed_word_is_each_update_in_turn() {
        let words = [0x1234_u16, 0xffff, 0x0000, 0xabcd, 0x0001];
        for &c in &words {
            for (&a, &b) in words.iter().zip(words.iter().rev()) {
                let (old, new) = ((u32::from(a) << 16) | u32::from(b), (u32::from(b) << 16) | 0x8001);
                let port = (0x0401_u16, 0xfffe_u16);
                let step = update16(update32(c, old, new), port.0, port.1);
                let once = adjust(c, delta32(old, new) + u32::from(!port.0) + u32::from(port.1));
                // Ones' complement: 0x0000 and 0xffff are the same number.
                assert!(step == once || (step ^ once) == 0xffff, "{c:#x} {old:#x}→{new:#x}: {step:#x} {once:#x}");
            }
        }
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3: 0001 f203 f4f5 f6f7 sums to ddf2 (folded).
        assert_eq!(fold(sum(0, &[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7])), 0xddf2);
        assert_eq!(checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]), !0xddf2);
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(fold(sum(0, &[0x12, 0x34, 0x56])), 0x1234 + 0x5600);
    }

    #[test]
    fn incremental_update_matches_a_full_recompute() {
        let mut data: Vec<u8> = (0..40u8).map(|i| i.wrapping_mul(37)).collect();
        data[10] = 0;
        data[11] = 0;
        let c = checksum(&data);
        data[10..12].copy_from_slice(&c.to_be_bytes());
        for (at, new) in [(8usize, 0x3f11u16), (0, 0xffff), (20, 0x0000)] {
            let old = u16::from_be_bytes([data[at], data[at + 1]]);
            let c = u16::from_be_bytes([data[10], data[11]]);
            data[at..at + 2].copy_from_slice(&new.to_be_bytes());
            let inc = update16(c, old, new);
            data[10..12].copy_from_slice(&[0, 0]);
            assert_eq!(inc, checksum(&data), "word at {at}");
            data[10..12].copy_from_slice(&inc.to_be_bytes());
            assert_eq!(fold(sum(0, &data)), 0xffff);
        }
    }
}
