// The ZIP container, as far as .npz archives (io/npz.hpp) need it: members are a name and
// their bytes; an archive is read from a buffer and written to one.
//
//   std::vector<cellflow::io::ZipMember> m = cellflow::io::parse_zip(data, size, "a.zip");
//   m[0].name, m[0].bytes                                    // uncompressed, CRC-32 checked
//   std::vector<std::uint8_t> zip = cellflow::io::encode_zip(m);   // deflated; (m, false) stores
//
// Read: members stored (method 0) or deflated (method 8, raw deflate through zlib); the zip64
// extended-information extra field (numpy writes one into every local header); data
// descriptors (bit 3, with or without their signature, 4- or 8-byte sizes: Python's zipfile
// writes them on unseekable streams); a trailing archive comment. Every local header is checked
// against the central directory, and every member's CRC-32 against its data. Everything else is
// an IOError naming the operation, the source, the member and the offset of the record at fault:
// encryption, other compression methods, unknown flags, multi-disk archives, zip64 end records
// (archives over 4 GiB or with over 65535 members), empty or duplicate names, names with a NUL
// byte, overlapping members (a ZIP-bomb construction), a central directory that does not end
// where the end record starts (bytes added or cut), truncated or overlong deflate streams.
//
// Memory: no size field is trusted before it is checked against the real data. The archive and
// its members' total uncompressed size are capped at kMaxZipBytes (4 GiB); a stored member's
// sizes must agree with each other and fit the archive; a deflated member may claim at most
// 1032 times its compressed size (deflate's maximum ratio), and its output grows only as
// decompressed bytes arrive.
//
// Written: members in the given order, stored or deflated (zlib level 6, numpy's default), no
// extra fields, no timestamps (1980-01-01 00:00), Unix mode rw-r--r--, the UTF-8 flag (bit 11)
// on names that are not ASCII: the same members always give the same bytes. zip64 is never
// written: a member or an archive over 4 GiB is an IOError.
//
// Needs zlib: link `cellflow::io` (not `cellflow::cellflow`) to use this header.
#pragma once

#include <zlib.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "cellflow/core/error.hpp"
#include "cellflow/detail/bytes.hpp"

namespace cellflow::io {

/// The largest ZIP archive read (file or buffer), and the largest total uncompressed size of its
/// members: 4 GiB. Larger archives would need zip64 directories, which are not read.
inline constexpr std::uint64_t kMaxZipBytes = std::uint64_t(1) << 32;

/// One member of a ZIP archive: its name as stored (a directory's ends in '/') and its
/// uncompressed bytes.
struct ZipMember {
  std::string name;                 ///< the name as stored in the archive (a directory's ends in '/')
  std::vector<std::uint8_t> bytes;  ///< the uncompressed content
};

namespace detail {
using cellflow::detail::ByteReader;
using cellflow::detail::ByteWriter;
using cellflow::detail::concat;
using cellflow::detail::hex32;
using cellflow::detail::printable;

constexpr std::uint32_t kZipLocalSig = 0x04034b50u;       // "PK\3\4"
constexpr std::uint32_t kZipCentralSig = 0x02014b50u;     // "PK\1\2"
constexpr std::uint32_t kZipEndSig = 0x06054b50u;         // "PK\5\6"
constexpr std::uint32_t kZipDescriptorSig = 0x08074b50u;  // "PK\7\8"
constexpr std::uint32_t kZip64LocatorSig = 0x07064b50u;   // "PK\6\7"
constexpr std::uint32_t kZipNoValue32 = 0xffffffffu;      // "see the zip64 extra field"
constexpr std::uint64_t kDeflateMaxRatio = 1032;          // deflate's largest expansion on inflate
constexpr std::size_t kZlibChunk = std::size_t(1) << 30;  // zlib counts in 32-bit uInt
constexpr std::size_t kZipMaxMembers = 65535;             // without zip64

/// zlib's CRC-32 of `n` bytes.
inline std::uint32_t crc32_of(const std::uint8_t* p, std::size_t n) {
  uLong crc = ::crc32(0L, Z_NULL, 0);
  while (n > 0) {
    const std::size_t chunk = std::min(n, kZlibChunk);
    crc = ::crc32(crc, p, static_cast<uInt>(chunk));
    p += chunk;
    n -= chunk;
  }
  return static_cast<std::uint32_t>(crc);
}

/// The operation and the file (or buffer name) every message starts with:
/// "<op>: '<source>': [member '<name>': ]<what>".
struct ZipContext {
  std::string op, source;

  /// "<op>: '<source>'", the start of every message (a ByteReader's context).
  std::string where() const { return concat(op, ": '", source, "'"); }
  [[noreturn]] void fail(const std::string& what) const { throw IOError(concat(where(), ": ", what)); }
  /// "<op>: '<source>': member '<name>'", the start of a message about one member.
  std::string member_where(const std::string& member) const {
    return concat(op, ": '", source, "': member '", printable(member), "'");
  }
  [[noreturn]] void fail_member(const std::string& member, const std::string& what) const {
    throw IOError(concat(member_where(member), ": ", what));
  }
};

/// How messages name the archive, and what its member names must look like. The defaults are a
/// plain ZIP archive's; io/npz.hpp says ".npz" and requires names ending in ".npy".
struct ZipFormat {
  std::string archive = "a ZIP archive";          // "empty (0 bytes), not a ZIP archive"
  std::string not_archive = "not a ZIP archive";  // "not a ZIP archive: 5 bytes, too short ..."
  /// Called with each member's name while the central directory is read (after the checks of
  /// flags and method, before the duplicate check); a non-empty result is the problem.
  std::function<std::string(const std::string&)> check_name;
};

/// One central-directory entry, its sizes resolved (zip64) and its local header checked.
struct ZipEntry {
  std::string name;
  std::size_t entry = 0;
  std::uint16_t flags = 0, method = 0;
  std::uint32_t crc = 0;
  std::uint64_t csize = 0, usize = 0, local_offset = 0, data_offset = 0, span_end = 0;
};

/// The zip64 extended-information field (id 0x0001) of an extra field, if there is one; `ok`
/// is false when the extra field is malformed (a record running past its end).
struct ExtraScan {
  std::vector<ByteReader> zip64;  // none, or a reader of the zip64 field's data
  bool ok = true;
};
inline ExtraScan scan_extra(ByteReader r) {
  ExtraScan s;
  while (r.remaining() >= 4) {  // fewer than 4 trailing bytes are padding (zipalign writes some)
    const std::uint16_t id = r.u16le("extra field id"), size = r.u16le("extra field size");
    if (size > r.remaining()) {
      s.ok = false;
      return s;
    }
    ByteReader data = r.sub(size, "extra field data", "zip64 extra field", "in the field");
    if (id == 0x0001 && s.zip64.empty()) s.zip64.push_back(std::move(data));
  }
  return s;
}

/// Replaces the 32-bit fields equal to 0xffffffff, in order, by the zip64 field's 64-bit values.
/// Returns false when the zip64 field is absent or too short.
inline bool resolve_zip64(const ExtraScan& extra, std::initializer_list<std::uint64_t*> fields) {
  if (extra.zip64.empty())
    return std::none_of(fields.begin(), fields.end(), [](auto* f) { return *f == kZipNoValue32; });
  ByteReader z = extra.zip64.front();
  for (std::uint64_t* f : fields) {
    if (*f != kZipNoValue32) continue;
    if (z.remaining() < 8) return false;
    *f = z.u64le("zip64 value");
  }
  return true;
}

inline const char* zip_method_name(unsigned m) {
  switch (m) {
    case 1:
      return " (shrink)";
    case 6:
      return " (implode)";
    case 9:
      return " (deflate64)";
    case 12:
      return " (bzip2)";
    case 14:
      return " (LZMA)";
    case 93:
      return " (zstd)";
    case 95:
      return " (xz)";
    case 99:
      return " (AES encryption)";
    default:
      return "";
  }
}

/// Reads the central directory and checks each member's local header; returns the members in
/// central-directory order. Reads nothing outside [data, data + size).
inline std::vector<ZipEntry> read_zip_directory(const std::uint8_t* data, std::size_t size, const ZipContext& ctx,
                                                const ZipFormat& format) {
  if (data == nullptr && size != 0) ctx.fail(concat("null data pointer with size ", size));
  if (size == 0) ctx.fail(concat("empty (0 bytes), not ", format.archive));
  if (size < 22)
    ctx.fail(
        concat(format.not_archive, ": ", size, " bytes, too short for the 22-byte end-of-central-directory record"));
  if (static_cast<std::uint64_t>(size) > kMaxZipBytes)
    ctx.fail(concat(size, " bytes, larger than the ", kMaxZipBytes, "-byte limit on ", format.archive));

  const ByteReader file(data, 0, size, ctx.where());

  // The end-of-central-directory record: the last 22 bytes, or earlier when a comment follows it.
  std::size_t eocd = size;
  const std::size_t lowest = size - 22 > 65535 ? size - 22 - 65535 : 0;
  for (std::size_t pos = size - 22 + 1; pos-- > lowest;) {
    if (file.peek_le<std::uint32_t>(pos, "an end record signature") == kZipEndSig &&
        pos + 22 + file.peek_le<std::uint16_t>(pos + 20, "an end record comment length") == size) {
      eocd = pos;
      break;
    }
  }
  if (eocd == size)
    ctx.fail(concat(format.not_archive,
                    ": no end-of-central-directory record (\"PK\\5\\6\") at its end (truncated, or not a ZIP file)"));
  if (eocd >= 20 && file.peek_le<std::uint32_t>(eocd - 20, "a zip64 locator signature") == kZip64LocatorSig)
    ctx.fail("zip64 end-of-central-directory record (an archive over 4 GiB or with over 65535 members): not supported");
  ByteReader e(data, eocd, size, ctx.where(), concat("end-of-central-directory record at offset ", eocd));
  e.skip(4, "the signature");
  const unsigned disk = e.u16le("the disk number"), cd_disk = e.u16le("the directory's disk"),
                 n_disk = e.u16le("the entries on this disk"), n_total = e.u16le("the entry count");
  const std::uint64_t cd_size = e.u32le("the directory size"), cd_offset = e.u32le("the directory offset");
  if (disk != 0 || cd_disk != 0 || n_disk != n_total)
    ctx.fail(concat("multi-disk (split) ZIP archive (end-of-central-directory record at offset ", eocd, ": disk ", disk,
                    ", directory disk ", cd_disk, ", ", n_disk, " of ", n_total,
                    " entries on this disk): not supported"));
  if (cd_offset + cd_size != eocd)
    ctx.fail(concat("the central directory (offset ", cd_offset, ", ", cd_size,
                    " bytes, from the end-of-central-directory record at offset ", eocd,
                    ") does not end where that record starts (truncated, or bytes added to the archive)"));
  if (std::uint64_t(n_total) * 46 > cd_size)
    ctx.fail(concat("the end-of-central-directory record at offset ", eocd, " declares ", n_total,
                    " members, but a central directory of ", cd_size, " bytes holds at most ", cd_size / 46));

  std::vector<ZipEntry> members;
  members.reserve(n_total);  // n_total * 46 <= cd_size <= size: bounded by the real data
  std::map<std::string, std::size_t> seen;
  std::uint64_t total = 0;
  ByteReader cd(data, static_cast<std::size_t>(cd_offset), eocd, ctx.where(), "central directory",
                "before the end-of-central-directory record");
  for (std::size_t k = 0; k < n_total; ++k) {
    const std::size_t pos = cd.pos();
    const std::string where = concat("central directory entry ", k, " at offset ", pos);
    if (cd.remaining() < 46)
      ctx.fail(
          concat(where, ": truncated (", cd.remaining(), " bytes left in the directory, an entry takes at least 46)"));
    const std::uint32_t signature = cd.u32le("an entry signature");
    if (signature != kZipCentralSig)
      ctx.fail(
          concat(where, ": signature ", hex32(signature), ", expected ", hex32(kZipCentralSig), " (\"PK\\1\\2\")"));
    ZipEntry m;
    m.entry = k;
    cd.skip(4, "the versions");
    m.flags = cd.u16le("the flags");
    m.method = cd.u16le("the method");
    cd.skip(4, "the time and date");
    m.crc = cd.u32le("the CRC-32");
    m.csize = cd.u32le("the compressed size");
    m.usize = cd.u32le("the uncompressed size");
    const std::size_t name_len = cd.u16le("the name length"), extra_len = cd.u16le("the extra field length"),
                      comment_len = cd.u16le("the comment length");
    const unsigned disk_start = cd.u16le("the disk number");
    cd.skip(6, "the attributes");
    m.local_offset = cd.u32le("the local header offset");
    if (cd.remaining() < name_len + extra_len + comment_len)
      ctx.fail(concat(where, ": its name, extra field and comment (", name_len + extra_len + comment_len,
                      " bytes) run past the end of the central directory"));
    m.name = cd.bytes(name_len, "the name");
    if (m.name.empty()) ctx.fail(concat(where, ": empty member name"));
    const auto fail = [&](const std::string& what) { ctx.fail_member(m.name, concat(what, " (", where, ")")); };
    const ExtraScan extra = scan_extra(cd.sub(extra_len, "the extra field", "extra field", "in the field"));
    cd.skip(comment_len, "the comment");
    if (!extra.ok) fail("malformed extra field in the central directory");
    if (!resolve_zip64(extra, {&m.usize, &m.csize, &m.local_offset}))
      fail("sizes or offset of 0xffffffff without a zip64 extra field holding them");
    if (disk_start != 0) fail(concat("starts on disk ", disk_start, ": multi-disk archives are not supported"));
    if (m.name.find('\0') != std::string::npos) fail("the name contains a NUL byte");
    if ((m.flags & 0x0001u) != 0) fail("encrypted: cellflow reads unencrypted archives only");
    if ((m.flags & ~0x080eu) != 0)
      fail(concat("unsupported ZIP flags ", hex32(m.flags), " (cellflow knows bits 1-3 and 11)"));
    if (m.method != 0 && m.method != 8)
      fail(concat("compression method ", m.method, zip_method_name(m.method),
                  " is not supported; cellflow reads stored (0) and deflated (8) members"));
    if (format.check_name) {
      const std::string problem = format.check_name(m.name);
      if (!problem.empty()) fail(problem);
    }
    const auto [it, fresh] = seen.emplace(m.name, k);
    if (!fresh) fail(concat("duplicate member name (central directory entries ", it->second, " and ", k, ")"));
    total += m.usize;
    if (total > kMaxZipBytes)
      fail(concat("the members' total uncompressed size reaches ", total, " bytes, over the ", kMaxZipBytes,
                  "-byte limit on ", format.archive));
    if (m.method == 0 && m.csize != m.usize)
      fail(concat("stored (uncompressed) member with a compressed size of ", m.csize,
                  " bytes and an uncompressed size of ", m.usize));
    if (m.method == 8 && m.usize > kDeflateMaxRatio * m.csize)
      fail(concat("claims ", m.usize, " uncompressed bytes from ", m.csize,
                  " compressed bytes; deflate expands at most ", kDeflateMaxRatio, " times (corrupt size field?)"));
    if (m.local_offset >= cd_offset)
      fail(
          concat("local header offset ", m.local_offset, " is not before the central directory at offset ", cd_offset));
    members.push_back(std::move(m));
  }
  if (!cd.at_end())
    ctx.fail(concat("the central directory has ", cd.remaining(), " bytes after its ", n_total,
                    " entries (wrong entry count in the end-of-central-directory record?)"));

  // Local headers: they must agree with the directory; the data must end before the directory.
  const ByteReader before_cd(data, 0, static_cast<std::size_t>(cd_offset), ctx.where());
  for (ZipEntry& m : members) {
    const std::uint64_t lo = m.local_offset;
    const auto fail = [&](const std::string& what) {
      ctx.fail_member(m.name, concat("local header at offset ", lo, ": ", what));
    };
    if (cd_offset - lo < 30)
      fail(concat("truncated (", cd_offset - lo, " bytes before the central directory, a header takes 30)"));
    ByteReader h(data, static_cast<std::size_t>(lo), static_cast<std::size_t>(cd_offset), ctx.where(),
                 concat("member '", printable(m.name), "': local header at offset ", lo),
                 "before the central directory");
    const std::uint32_t signature = h.u32le("the signature");
    if (signature != kZipLocalSig)
      fail(concat("signature ", hex32(signature), ", expected ", hex32(kZipLocalSig), " (\"PK\\3\\4\")"));
    h.skip(2, "the version");
    const std::uint16_t flags = h.u16le("the flags"), method = h.u16le("the method");
    h.skip(4, "the time and date");
    const std::uint32_t crc = h.u32le("the CRC-32");
    std::uint64_t csize = h.u32le("the compressed size"), usize = h.u32le("the uncompressed size");
    const std::size_t name_len = h.u16le("the name length"), extra_len = h.u16le("the extra field length");
    if (h.remaining() < name_len + extra_len)
      fail("its name and extra field run into the central directory (truncated?)");
    const std::string name = h.bytes(name_len, "the name");
    if (name != m.name) fail(concat("names the member '", printable(name), "' (the central directory disagrees)"));
    if (method != m.method) fail(concat("compression method ", method, ", the central directory says ", m.method));
    if ((flags & 0x0001u) != 0) fail("encrypted: cellflow reads unencrypted archives only");
    if (((flags ^ m.flags) & 0x0008u) != 0)
      fail("the data-descriptor flag (bit 3) disagrees with the central directory");
    const ExtraScan extra = scan_extra(h.sub(extra_len, "the extra field", "extra field", "in the field"));
    if (!extra.ok) fail("malformed extra field");
    m.data_offset = h.pos();
    if (cd_offset - m.data_offset < m.csize)
      fail(concat("its ", m.csize, " bytes of data from offset ", m.data_offset,
                  " run past the start of the central directory at offset ", cd_offset, " (truncated?)"));
    std::uint64_t end = m.data_offset + m.csize;
    if ((m.flags & 0x0008u) == 0) {
      if (!resolve_zip64(extra, {&usize, &csize})) fail("sizes of 0xffffffff without a zip64 extra field holding them");
      if (crc != m.crc || csize != m.csize || usize != m.usize)
        fail(concat("CRC-32 ", hex32(crc), ", sizes ", csize, " / ", usize,
                    " (compressed / uncompressed); the central directory says ", hex32(m.crc), ", ", m.csize, " / ",
                    m.usize));
    } else {
      // A data descriptor follows the data: [signature] CRC-32, sizes (8 bytes each with zip64).
      const std::size_t w = extra.zip64.empty() ? 4 : 8;
      const auto matches = [&](std::uint64_t at) {
        if (cd_offset - at < 4 + 2 * w) return false;
        ByteReader d(data, static_cast<std::size_t>(at), static_cast<std::size_t>(cd_offset), ctx.where(),
                     "data descriptor");
        const std::uint32_t dcrc = d.u32le("the CRC-32");
        const std::uint64_t dc = w == 8 ? d.u64le("the compressed size") : d.u32le("the compressed size"),
                            du = w == 8 ? d.u64le("the uncompressed size") : d.u32le("the uncompressed size");
        return dcrc == m.crc && dc == m.csize && du == m.usize;
      };
      if (cd_offset - end >= 4 &&
          before_cd.peek_le<std::uint32_t>(static_cast<std::size_t>(end), "a data descriptor signature") ==
              kZipDescriptorSig &&
          matches(end + 4))
        end += 4 + 4 + 2 * w;
      else if (matches(end))
        end += 4 + 2 * w;
      else
        fail(concat("the data descriptor after its data (offset ", end,
                    ") is missing or disagrees with the central directory"));
    }
    m.span_end = end;
  }
  // Members must not overlap (overlapping members are a known ZIP-bomb construction).
  std::vector<const ZipEntry*> by_offset;
  for (const ZipEntry& m : members) by_offset.push_back(&m);
  std::sort(by_offset.begin(), by_offset.end(),
            [](const ZipEntry* a, const ZipEntry* b) { return a->local_offset < b->local_offset; });
  for (std::size_t k = 1; k < by_offset.size(); ++k)
    if (by_offset[k - 1]->span_end > by_offset[k]->local_offset)
      ctx.fail_member(by_offset[k]->name,
                      concat("its local header at offset ", by_offset[k]->local_offset, " lies inside member '",
                             printable(by_offset[k - 1]->name), "' (offsets ", by_offset[k - 1]->local_offset, " to ",
                             by_offset[k - 1]->span_end, ")"));
  return members;
}

/// zlib's raw inflate of one member: exactly `csize` input bytes must decode to exactly `usize`
/// bytes. The output grows only as bytes arrive (never beyond usize + 1).
inline std::vector<std::uint8_t> inflate_member(const std::uint8_t* in, std::uint64_t csize, std::uint64_t usize,
                                                const ZipContext& ctx, const std::string& member) {
  z_stream zs{};
  if (inflateInit2(&zs, -MAX_WBITS) != Z_OK) ctx.fail_member(member, "cannot initialise zlib");
  struct End {
    z_stream* z;
    ~End() { inflateEnd(z); }
  } end{&zs};
  const std::uint64_t cap = usize + 1;  // one byte more than promised detects an overlong stream
  std::vector<std::uint8_t> out(
      static_cast<std::size_t>(std::min<std::uint64_t>(cap, std::max<std::uint64_t>(65536, 2 * csize))));
  std::uint64_t produced = 0, in_left = csize;
  for (;;) {
    if (zs.avail_in == 0 && in_left > 0) {
      const auto chunk = static_cast<std::size_t>(std::min<std::uint64_t>(in_left, kZlibChunk));
      zs.next_in = const_cast<Bytef*>(in);  // zlib's API is not const-correct; it does not write
      zs.avail_in = static_cast<uInt>(chunk);
      in += chunk;
      in_left -= chunk;
    }
    if (produced == out.size())
      out.resize(static_cast<std::size_t>(std::min<std::uint64_t>(cap, 2 * static_cast<std::uint64_t>(out.size()))));
    const auto room = static_cast<std::size_t>(std::min<std::uint64_t>(out.size() - produced, kZlibChunk));
    zs.next_out = out.data() + produced;
    zs.avail_out = static_cast<uInt>(room);
    const int rc = inflate(&zs, Z_NO_FLUSH);
    produced += room - zs.avail_out;
    if (produced > usize)
      ctx.fail_member(
          member, concat("the deflate stream decompresses to more than the ", usize, " bytes the archive promises"));
    if (rc == Z_STREAM_END) break;
    if (rc == Z_OK) continue;
    if (rc == Z_BUF_ERROR && zs.avail_in == 0 && in_left == 0)
      ctx.fail_member(member,
                      concat("corrupt deflate stream: the ", csize, " compressed bytes end before the stream does (",
                             produced, " of ", usize, " bytes decompressed; truncated?)"));
    ctx.fail_member(member,
                    concat("corrupt deflate stream (zlib error ", rc, ": ", zs.msg != nullptr ? zs.msg : zError(rc),
                           ") after ", produced, " decompressed bytes"));
  }
  const std::uint64_t left = zs.avail_in + in_left;
  if (left != 0)
    ctx.fail_member(member, concat("corrupt deflate stream: ", left, " of its ", csize,
                                   " compressed bytes follow the end of the stream"));
  if (produced != usize)
    ctx.fail_member(member,
                    concat("the deflate stream decompresses to ", produced, " bytes, the archive promises ", usize));
  out.resize(static_cast<std::size_t>(produced));
  return out;
}

/// The m.usize uncompressed bytes of member `m` of the archive at `data` (as read_zip_directory
/// returned it), CRC-32 checked: a pointer into the archive for a stored member, into `buffer`
/// (replaced) for a deflated one.
inline const std::uint8_t* zip_member_data(const std::uint8_t* data, const ZipEntry& m, const ZipContext& ctx,
                                           std::vector<std::uint8_t>& buffer) {
  const std::uint8_t* bytes = data + m.data_offset;
  if (m.method == 8) {
    buffer = inflate_member(bytes, m.csize, m.usize, ctx, m.name);
    bytes = buffer.data();
  }
  const std::uint32_t crc = crc32_of(bytes, static_cast<std::size_t>(m.usize));
  if (crc != m.crc)
    ctx.fail_member(m.name, concat("CRC-32 mismatch: the archive says ", hex32(m.crc), ", the data gives ", hex32(crc),
                                   " (corrupt file)"));
  return bytes;
}

/// Raw deflate (no zlib header), as ZIP stores it; level 6, numpy's default.
inline std::vector<std::uint8_t> deflate_raw(const std::uint8_t* in, std::size_t n, const ZipContext& ctx,
                                             const std::string& member) {
  z_stream zs{};
  if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    ctx.fail_member(member, "cannot initialise zlib");
  struct End {
    z_stream* z;
    ~End() { deflateEnd(z); }
  } end{&zs};
  std::vector<std::uint8_t> out(static_cast<std::size_t>(deflateBound(&zs, static_cast<uLong>(n))) + 64);
  std::size_t produced = 0, in_left = n;
  for (;;) {
    if (zs.avail_in == 0 && in_left > 0) {
      const std::size_t chunk = std::min(in_left, kZlibChunk);
      zs.next_in = const_cast<Bytef*>(in);  // zlib's API is not const-correct; it does not write
      zs.avail_in = static_cast<uInt>(chunk);
      in += chunk;
      in_left -= chunk;
    }
    if (produced == out.size()) out.resize(out.size() + 65536);
    const std::size_t room = std::min(out.size() - produced, kZlibChunk);
    zs.next_out = out.data() + produced;
    zs.avail_out = static_cast<uInt>(room);
    const int rc = deflate(&zs, in_left == 0 ? Z_FINISH : Z_NO_FLUSH);
    produced += room - zs.avail_out;
    if (rc == Z_STREAM_END) break;
    if (rc != Z_OK && rc != Z_BUF_ERROR) ctx.fail_member(member, concat("zlib deflate error ", rc));
  }
  out.resize(produced);
  return out;
}

/// Builds an archive member by member, so that a caller encoding its members one at a time (as
/// io/npz.hpp does) never holds more than one of them besides the archive.
class ZipWriter {
 public:
  ZipWriter(const ZipContext& ctx, bool compress) : ctx_(ctx), compress_(compress) {}

  /// Appends a member. ValueError for an empty name, a name with a NUL byte or of more than
  /// 65535 bytes, a name already present, or a 65536th member; IOError when the member or the
  /// archive would exceed 4 GiB.
  void add(const std::string& name, const std::uint8_t* bytes, std::size_t size) {
    const auto bad = [&](const std::string& what) { throw ValueError(concat(ctx_.op, ": ", what)); };
    if (name.empty()) bad(concat("member ", central_.size(), ": empty name"));
    if (name.find('\0') != std::string::npos) bad(concat("member name '", printable(name), "' contains a NUL byte"));
    if (name.size() > 65535) bad(concat("member name of ", name.size(), " bytes; a ZIP name holds at most 65535"));
    if (central_.size() == kZipMaxMembers)
      bad(concat("more than ", kZipMaxMembers, " members; a ZIP archive without zip64 holds at most ", kZipMaxMembers));
    if (!names_.insert(name).second) bad(concat("duplicate member name '", printable(name), "'"));

    if (size > kLimit)
      ctx_.fail_member(name, concat(size, " bytes: members over 4 GiB need zip64, which cellflow does not write"));
    const std::uint32_t crc = crc32_of(bytes, size);
    std::vector<std::uint8_t> deflated;
    if (compress_) deflated = deflate_raw(bytes, size, ctx_, name);
    const std::uint8_t* payload = compress_ ? deflated.data() : bytes;
    const std::size_t payload_size = compress_ ? deflated.size() : size;
    const bool ascii =
        std::all_of(name.begin(), name.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
    Central c{name,
              static_cast<std::uint16_t>(ascii ? 0 : 0x0800),
              static_cast<std::uint16_t>(compress_ ? 8 : 0),
              crc,
              0,
              static_cast<std::uint32_t>(size),
              0};
    if (out_.size() + 30 + name.size() + payload_size > kLimit)
      ctx_.fail(concat("the archive would exceed 4 GiB; that needs zip64, which cellflow does not write"));
    c.csize = static_cast<std::uint32_t>(payload_size);
    c.offset = static_cast<std::uint32_t>(out_.size());
    out_.u32le(kZipLocalSig);
    out_.u16le(20);  // version needed: 2.0 (deflate)
    out_.u16le(c.flags);
    out_.u16le(c.method);
    out_.u16le(0);       // time 00:00:00
    out_.u16le(0x0021);  // date 1980-01-01: no timestamps, reproducible bytes
    out_.u32le(c.crc);
    out_.u32le(c.csize);
    out_.u32le(c.usize);
    out_.u16le(static_cast<std::uint16_t>(name.size()));
    out_.u16le(0);
    out_.raw(name);
    out_.raw(payload, payload_size);
    central_.push_back(std::move(c));
  }

  /// Appends the central directory and the end record, and returns the archive's bytes (the
  /// writer is left empty). IOError when the archive would exceed 4 GiB.
  std::vector<std::uint8_t> finish() {
    const std::size_t cd_offset = out_.size();
    for (const Central& c : central_) {
      out_.u32le(kZipCentralSig);
      out_.u16le(0x0314);  // made by: Unix, ZIP 2.0
      out_.u16le(20);
      out_.u16le(c.flags);
      out_.u16le(c.method);
      out_.u16le(0);
      out_.u16le(0x0021);
      out_.u32le(c.crc);
      out_.u32le(c.csize);
      out_.u32le(c.usize);
      out_.u16le(static_cast<std::uint16_t>(c.name.size()));
      out_.u16le(0);               // extra
      out_.u16le(0);               // comment
      out_.u16le(0);               // disk
      out_.u16le(0);               // internal attributes
      out_.u32le(0100644u << 16);  // external attributes: regular file, rw-r--r--
      out_.u32le(c.offset);
      out_.raw(c.name);
    }
    if (out_.size() > kLimit)
      ctx_.fail("the archive would exceed 4 GiB; that needs zip64, which cellflow does not write");
    const std::size_t cd_size = out_.size() - cd_offset;
    out_.u32le(kZipEndSig);
    out_.u16le(0);
    out_.u16le(0);
    out_.u16le(static_cast<std::uint16_t>(central_.size()));
    out_.u16le(static_cast<std::uint16_t>(central_.size()));
    out_.u32le(static_cast<std::uint32_t>(cd_size));
    out_.u32le(static_cast<std::uint32_t>(cd_offset));
    out_.u16le(0);
    central_.clear();
    names_.clear();
    return out_.take();
  }

 private:
  static constexpr std::uint64_t kLimit = 0xfffffffeu;  // 32-bit ZIP fields; 0xffffffff means zip64

  struct Central {
    std::string name;
    std::uint16_t flags, method;
    std::uint32_t crc, csize, usize, offset;
  };
  ZipContext ctx_;
  bool compress_;
  std::vector<Central> central_;
  std::set<std::string> names_;
  ByteWriter out_;
};

}  // namespace detail

/// Reads every member of a ZIP archive held in memory, in central-directory order. `source`
/// names it in error messages ("parse_zip: '<source>': ..."). Throws IOError for anything
/// malformed or unsupported (see the top of this header).
inline std::vector<ZipMember> parse_zip(const std::uint8_t* data, std::size_t size,
                                        const std::string& source = "<buffer>") {
  const detail::ZipContext ctx{"parse_zip", source};
  const std::vector<detail::ZipEntry> entries = detail::read_zip_directory(data, size, ctx, detail::ZipFormat{});
  std::vector<ZipMember> members;
  members.reserve(entries.size());
  std::vector<std::uint8_t> buffer;
  for (const detail::ZipEntry& e : entries) {
    const std::uint8_t* bytes = detail::zip_member_data(data, e, ctx, buffer);
    members.push_back(ZipMember{e.name, std::vector<std::uint8_t>(bytes, bytes + e.usize)});
  }
  return members;
}

/// The bytes of a ZIP archive of `members`, in their order, deflated when `compress`, else
/// stored. Deterministic. Throws ValueError for an empty, duplicate or NUL-holding name, a name
/// over 65535 bytes or more than 65535 members; IOError when the archive would exceed 4 GiB.
inline std::vector<std::uint8_t> encode_zip(const std::vector<ZipMember>& members, bool compress = true) {
  detail::ZipWriter writer(detail::ZipContext{"encode_zip", "<buffer>"}, compress);
  for (const ZipMember& m : members) writer.add(m.name, m.bytes.data(), m.bytes.size());
  return writer.finish();
}

}  // namespace cellflow::io
