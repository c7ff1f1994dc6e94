//! gzip answers spliced from pieces compressed in advance.
//!
//! A card's template is fixed between its per-request holes (see
//! [`super::rendered::CardTemplate`]), and a batch is many templates, so
//! compressing every answer would cost more than writing it. Instead each
//! fixed piece is compressed once, on its own (a raw deflate stream ended
//! by a sync flush: it refers to nothing before it and ends on a byte
//! boundary), and an answer is those pieces in order with the per-request
//! bytes between them as stored (uncompressed) deflate blocks, inside one
//! gzip member: header, the blocks, an empty final block, CRC-32 and
//! length of the uncompressed bytes (RFC 1951 §3.2.3–3.2.4, RFC 1952 §2.3).
//! The CRC runs over the uncompressed pieces as they are spliced
//! (`crc32fast`, SIMD), which costs far less than writing them would.

use bytes::{BufMut, Bytes, BytesMut};
use flate2::{Compress, Compression, FlushCompress, Status};

/// A gzip header: deflate, no flags, no mtime, unknown OS (RFC 1952 §2.3).
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
/// An empty final block with fixed Huffman codes: BFINAL=1, BTYPE=01 and
/// the end-of-block code, 10 bits in two bytes (byte-aligned before it).
const FINAL_BLOCK: [u8; 2] = [0x03, 0x00];
/// The longest stored block (its LEN is 16 bits).
const MAX_STORED: usize = 0xffff;

/// `raw` as a raw deflate stream that ends with a sync flush: it may be
/// followed by any other such piece or stored block.
pub fn deflate_piece(raw: &[u8]) -> Bytes {
    let mut compress = Compress::new(Compression::default(), false);
    // Deflate grows incompressible input by a few bytes per 16 kB block;
    // the sync flush adds five more.
    let mut out = Vec::with_capacity(raw.len() / 2 + 64);
    loop {
        let consumed = compress.total_in() as usize;
        let before = out.len();
        let status = compress
            .compress_vec(&raw[consumed..], &mut out, FlushCompress::Sync)
            // Compressing memory into memory fails only on a bug in the
            // backend; there is no partial answer to fall back to.
            .expect("deflate of an in-memory buffer");
        let done = compress.total_in() as usize == raw.len() && out.len() < out.capacity();
        if done || (status == Status::BufError && out.len() == before) {
            break;
        }
        out.reserve(out.capacity().max(64));
    }
    Bytes::from(out)
}

/// A gzip answer being assembled from compressed pieces and literal bytes.
pub struct Splicer {
    out: BytesMut,
    /// Literal bytes not yet written (as one stored block, when the next
    /// compressed piece or the end comes).
    literal: Vec<u8>,
    crc: crc32fast::Hasher,
    /// Uncompressed length so far (ISIZE is it modulo 2^32).
    size: u64,
}

impl Splicer {
    /// An answer whose compressed form is about `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> Self {
        let mut out = BytesMut::with_capacity(capacity + HEADER.len() + 16);
        out.put_slice(&HEADER);
        Splicer {
            out,
            literal: Vec::with_capacity(256),
            crc: crc32fast::Hasher::new(),
            size: 0,
        }
    }

    /// Where literal bytes go (they count once [`Splicer::piece`] or
    /// [`Splicer::finish`] writes them).
    pub fn literal(&mut self) -> &mut Vec<u8> {
        &mut self.literal
    }

    /// Appends `raw`, given as its [`deflate_piece`].
    pub fn piece(&mut self, raw: &[u8], deflated: &[u8]) {
        self.flush_literal();
        self.crc.update(raw);
        self.size += raw.len() as u64;
        self.out.put_slice(deflated);
    }

    fn flush_literal(&mut self) {
        if self.literal.is_empty() {
            return;
        }
        self.crc.update(&self.literal);
        self.size += self.literal.len() as u64;
        for chunk in self.literal.chunks(MAX_STORED) {
            // BFINAL=0, BTYPE=00, padded to the byte; LEN and its complement.
            let len = chunk.len() as u16;
            self.out.put_u8(0);
            self.out.put_u16_le(len);
            self.out.put_u16_le(!len);
            self.out.put_slice(chunk);
        }
        self.literal.clear();
    }

    /// The gzip member.
    pub fn finish(mut self) -> Bytes {
        self.flush_literal();
        self.out.put_slice(&FINAL_BLOCK);
        self.out.put_u32_le(self.crc.finalize());
        self.out.put_u32_le(self.size as u32);
        self.out.freeze()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use super::*;

    fn gunzip(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        // MultiGzDecoder would hide a second member; one is expected.
        let mut decoder = flate2::read::GzDecoder::new(bytes);
        decoder.read_to_end(&mut out).expect("a valid gzip member");
        assert!(decoder.into_inner().is_empty(), "nothing after the member");
        out
    }

    #[test]
    fn pieces_and_literals_splice_into_one_valid_member() {
        let a = br#"{"service":{"data":{"id":"PA","name":"checkout checkout checkout"},"max_age_secs":"#;
        let b = br#","stale":false},"generated_at":"#;
        // Longer than a stored block and incompressible, so both the
        // chunking and deflate's growth are exercised.
        let long: Vec<u8> = (0..200_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let mut gz = Splicer::with_capacity(0);
        gz.piece(a, &deflate_piece(a));
        gz.literal().extend_from_slice(b"42");
        gz.piece(b, &deflate_piece(b));
        gz.literal().extend_from_slice(&long);
        gz.piece(b"", &deflate_piece(b""));
        gz.piece(&long, &deflate_piece(&long));
        gz.literal().extend_from_slice(b"}");
        let expected = [&a[..], b"42", b, &long, &long, b"}"].concat();
        assert_eq!(gunzip(&gz.finish()), expected);
    }

    #[test]
    fn an_empty_answer_is_a_valid_member() {
        assert_eq!(gunzip(&Splicer::with_capacity(0).finish()), b"");
    }

    #[test]
    fn repeated_text_compresses() {
        let raw = br#"{"name":"checkout","status":"active"},"#.repeat(100);
        assert!(deflate_piece(&raw).len() * 10 < raw.len());
    }
}
