// Checkpoints: a model's variables, optionally the whole state of its optimizer (any
// Optimizer<T>: AdamOptimizer, GradientDescentOptimizer, ...) and free-form metadata, in one
// versioned, checksummed little-endian binary file. The byte layout, every field with its offset
// and type, and the versioning rules are in docs/checkpoint-format.md.
//
//   cellflow::io::save_checkpoint("model.ckpt", vars, &adam, {{"cell", "gru"}, {"units", "150"}});
//   cellflow::io::load_checkpoint("model.ckpt", vars, &adam);     // resume training
//   cellflow::io::load_checkpoint("model.ckpt", vars);            // weights only (e.g. to evaluate)
//   cellflow::io::read_checkpoint_info("model.ckpt").metadata.at("cell");
//
// Versions: a writer emits the lowest format version that can express what it saves. Version 1
// holds the variables, the state of an AdamOptimizer (in Adam's own layout) and metadata; version
// 2 adds a generic optimizer section (kind, named scalars, named counters, slots by variable and
// slot name) for every other optimizer. So a checkpoint without an optimizer or with Adam is
// written as version 1 (cellflow 0.1 reads it), one with GradientDescent as version 2. Both are
// read.
//
// Guarantees:
// * Loading checks everything before it changes anything: magic, format version, declared size
//   against the real size, CRC-32, the structure of every section, the scalar type against T,
//   that the file's variables are exactly the model's (matched by name; every missing, extra or
//   differently shaped variable is listed, with a hint when only a scope prefix differs), and
//   the optimizer state (its kind, and the optimizer's own check_state). Only then are the
//   variables and the optimizer assigned: a failed load leaves both as they were.
// * A header never decides an allocation by itself: every count and dimension is checked
//   against the bytes actually present (products of dimensions without overflow) first.
// * Saving goes through write_file_atomically (io/atomic_file.hpp), the policy every file
//   cellflow writes follows: symbolic links followed, read-only, directory and non-regular
//   targets refused, permission bits kept, the temporary files of killed saves removed, a
//   temporary file written in full, fsync'ed and renamed over <path>. On any failure the
//   temporary file is removed, IOError is thrown and a previous file at <path> is left
//   byte-identical.
//
// Errors: IOError for a file that cannot be read or written or whose content is malformed;
// ValueError for a well-formed file that does not fit the model or optimizer it is loaded into
// (scalar type, variables, optimizer kind or state), and for a model/optimizer that cannot be
// saved. Every message starts with the operation and the file: "load_checkpoint: 'm.ckpt': ...".
//
// Needs no zlib (own CRC-32): works with the cellflow::cellflow target. Knows no optimizer by
// type: it saves and restores any Optimizer<T> through its OptimizerState.
#pragma once

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include "cellflow/core/error.hpp"
#include "cellflow/core/types.hpp"
#include "cellflow/core/variable.hpp"
#include "cellflow/detail/bytes.hpp"
#include "cellflow/detail/crc32.hpp"
#include "cellflow/io/atomic_file.hpp"
#include "cellflow/optimizers/optimizer.hpp"

namespace cellflow::io {

/// Free-form key/value strings stored with a checkpoint (e.g. {"cell", "gru"}, {"layers", "3"}).
/// Keys are non-empty and unique; values may be empty. Stored sorted by key.
using CheckpointMetadata = std::map<std::string, std::string>;

/// Name and TensorFlow shape of one variable in a checkpoint.
struct CheckpointVariableInfo {
  std::string name;          ///< the variable's TF name
  std::vector<Index> shape;  ///< its TensorFlow shape: {rows, cols} or {n}
};

/// One optimizer slot in a checkpoint: the variable it belongs to, its name ("m"), its shape.
struct CheckpointSlotInfo {
  std::string variable;      ///< the TF name of the variable the slot belongs to
  std::string slot;          ///< the slot's name: "m", "v", ...
  std::vector<Index> shape;  ///< its shape, the variable's
};

/// What a checkpoint file holds, without the tensors' values.
struct CheckpointInfo {
  int version = 0;                                      ///< format version of the file (1 or 2)
  std::string scalar_type;                              ///< "f32" or "f64"
  std::uint64_t file_size = 0;                          ///< bytes, checksum included
  std::vector<CheckpointVariableInfo> variables;        ///< in the file's order
  bool has_optimizer = false;                           ///< an optimizer section is present
  std::string optimizer;                                ///< its kind ("adam"), empty without one
  long long optimizer_step = 0;                         ///< its counter "step", 0 without one
  std::map<std::string, double> optimizer_scalars;      ///< its scalars, widened to double (exact)
  std::map<std::string, long long> optimizer_counters;  ///< its counters ("step")
  std::vector<CheckpointSlotInfo> optimizer_slots;      ///< its slots, in the file's order
  CheckpointMetadata metadata;                          ///< the free-form key/value strings saved with it
};

/// The newest format version this header reads (it reads versions 1 to this one). It writes the
/// lowest version that can express what it saves: 1 without an optimizer or with Adam, 2 with
/// any other optimizer.
inline constexpr std::uint32_t kCheckpointVersion = 2;
/// The 8 magic bytes every checkpoint starts with: 0x89 "CFCKPT" 0x0A.
inline constexpr std::uint8_t kCheckpointMagic[8] = {0x89, 'C', 'F', 'C', 'K', 'P', 'T', 0x0A};
/// Bytes of the fixed header (magic, version, scalar type, file size).
inline constexpr std::size_t kCheckpointHeaderBytes = 24;
/// Most dimensions a variable may have in a file.
inline constexpr std::uint32_t kCheckpointMaxRank = 8;

namespace detail {

using cellflow::detail::ByteReader;
using cellflow::detail::ByteWriter;
using cellflow::detail::concat;
using cellflow::detail::crc32;
using cellflow::detail::hex32;
using cellflow::detail::load_le;
using cellflow::detail::printable;

template <class T>
struct identity {
  using type = T;
};
template <class T>
using identity_t = typename identity<T>::type;

// Scalar type codes of the header.
inline constexpr std::uint32_t kCkptF32 = 1, kCkptF64 = 2;
// Section tags, as the 4 bytes appear in the file.
inline constexpr char kCkptTagModel[5] = "MODL";
inline constexpr char kCkptTagOptimizer[5] = "OPTM";
inline constexpr char kCkptTagMeta[5] = "META";
inline constexpr std::size_t kCkptSectionHeaderBytes = 12;  // tag + u64 payload length
inline constexpr std::size_t kCkptMinBytes = kCheckpointHeaderBytes + kCkptSectionHeaderBytes + 8 + 4;
// The state of an AdamOptimizer as version 1 lays it out: these scalars in this order, then the
// counter "step", then the slots "m" and "v" of every variable.
inline constexpr const char* kCkptV1AdamScalars[6] = {"learning_rate", "beta1",       "beta2",
                                                      "epsilon",       "beta1_power", "beta2_power"};

template <class T>
constexpr std::uint32_t checkpoint_scalar_code() {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "checkpoints hold float or double");
  static_assert(std::numeric_limits<T>::is_iec559, "checkpoints need IEEE-754 float and double");
  return std::is_same_v<T, float> ? kCkptF32 : kCkptF64;
}

inline const char* checkpoint_scalar_name(std::uint32_t code) { return code == kCkptF32 ? "f32" : "f64"; }
inline std::size_t checkpoint_scalar_bytes(std::uint32_t code) { return code == kCkptF32 ? 4 : 8; }

/// A tag, name or other byte string of a file for a message: escaped (printable) and cut at 200
/// characters.
inline std::string ckpt_name(const std::string& name) { return printable(name, 200, '\''); }

/// A value stored in the file's scalar type at `p`, widened to double (exactly).
inline double ckpt_get_as_double(const std::uint8_t* p, std::uint32_t code) {
  return code == kCkptF32 ? static_cast<double>(load_le<float>(p)) : load_le<double>(p);
}

/// Where the values of one tensor are in the buffer.
struct CkptTensorLayout {
  std::size_t offset = 0;  // byte offset of the first value
  std::size_t count = 0;   // number of values
};

/// Where an optimizer's state is in the buffer, whatever the version that laid it out.
struct CkptOptimizerLayout {
  struct Scalar {
    std::string name;
    std::size_t offset;  // byte offset of the value
  };
  struct Slot {
    std::size_t variable;  // index into the file's variables
    std::string name;
    CkptTensorLayout values;
  };
  std::vector<Scalar> scalars;
  std::vector<Slot> slots;
};

/// Everything parse found: the public info plus where the values are.
struct CkptLayout {
  CheckpointInfo info;
  std::uint32_t scalar_code = 0;
  std::vector<CkptTensorLayout> values;  // per variable, file order
  CkptOptimizerLayout optimizer;
};

/// The fixed header fields.
struct CkptHeader {
  std::uint32_t version = 0, scalar_code = 0;
  std::uint64_t file_size = 0;
};

/// Checks the first `n` bytes of a checkpoint (n may be less than the header when the file is
/// shorter): magic, version, scalar type, the declared size's minimum. `ctx` is "op: 'file'".
inline CkptHeader check_checkpoint_header(const std::uint8_t* p, std::size_t n, const std::string& ctx) {
  if (n == 0) throw IOError(concat(ctx, ": the file is empty, not a cellflow checkpoint"));
  const std::size_t magic_n = std::min<std::size_t>(n, 8);
  if (std::memcmp(p, kCheckpointMagic, magic_n) != 0)
    throw IOError(concat(ctx, ": wrong magic bytes: expected ", printable(kCheckpointMagic, 8, 64, '\''), ", found ",
                         printable(p, magic_n, 64, '\''), "; not a cellflow checkpoint"));
  if (n < kCheckpointHeaderBytes)
    throw IOError(concat(ctx, ": truncated header: expected at least ", kCheckpointHeaderBytes, " bytes, found ", n));
  ByteReader r(p, 8, kCheckpointHeaderBytes, ctx, "header");
  CkptHeader h;
  h.version = r.u32le("the format version");
  if (h.version == 0) throw IOError(concat(ctx, ": invalid format version 0 (header bytes 8 to 11)"));
  if (h.version > kCheckpointVersion)
    throw IOError(concat(ctx, ": format version ", h.version,
                         " (header bytes 8 to 11) is newer than this cellflow reads (versions 1 to ",
                         kCheckpointVersion, "); update cellflow to read it"));
  h.scalar_code = r.u32le("the scalar type");
  if (h.scalar_code != kCkptF32 && h.scalar_code != kCkptF64)
    throw IOError(concat(ctx, ": unknown scalar type code ", h.scalar_code,
                         " (header bytes 12 to 15): expected 1 (f32) or 2 (f64)"));
  h.file_size = r.u64le("the file size");
  if (h.file_size < kCkptMinBytes)
    throw IOError(concat(ctx, ": the header's file size ", h.file_size, " (header bytes 16 to 23) is below the ",
                         kCkptMinBytes, "-byte minimum of a checkpoint"));
  return h;
}

inline std::string ckpt_var_label(std::size_t k, const std::string& name) {
  return concat("variable ", k, " ('", ckpt_name(name), "')");
}

inline void parse_model_section(ByteReader& r, CkptLayout& out) {
  const std::size_t sb = checkpoint_scalar_bytes(out.scalar_code);
  const std::size_t count_at = r.pos();
  const std::uint64_t count = r.u64le("the variable count");
  // Each variable takes at least 9 bytes: a name length and one name byte, a rank.
  if (count > r.remaining() / 9)
    r.fail(concat("section MODL: the variable count ", count, " at byte offset ", count_at, " cannot fit in the ",
                  r.remaining(), " bytes that remain in the section (each variable needs at least 9)"));
  std::map<std::string, std::size_t> seen;
  for (std::size_t k = 0; k < count; ++k) {
    const std::size_t name_at = r.pos();
    std::string name = r.str32(concat("variable ", k, " name"), false);
    const std::string label = ckpt_var_label(k, name);
    if (auto it = seen.find(name); it != seen.end())
      r.fail(
          concat("section MODL: ", label, " at byte offset ", name_at, " repeats the name of variable ", it->second));
    seen.emplace(name, k);
    const std::size_t rank_at = r.pos();
    const std::uint32_t rank = r.u32le(concat(label, " rank"));
    if (rank > kCheckpointMaxRank)
      r.fail(concat("section MODL: ", label, " has rank ", rank, " at byte offset ", rank_at, ", more than the ",
                    kCheckpointMaxRank, " a checkpoint allows"));
    r.need(std::size_t(8) * rank, concat(label, " dimensions"));
    // Dimensions: every one and their product must fit in the values the remaining bytes hold.
    const std::size_t limit = (r.remaining() - std::size_t(8) * rank) / sb;
    std::vector<Index> shape;
    std::size_t elements = 1;
    for (std::uint32_t d = 0; d < rank; ++d) {
      const std::size_t dim_at = r.pos();
      const std::uint64_t dim = r.u64le(concat(label, " dimension ", d));
      if (dim > limit || (dim != 0 && elements > limit / dim))
        r.fail(concat("section MODL: ", label, " dimension ", d, " = ", dim, " at byte offset ", dim_at,
                      " makes more values than the ", limit, " that the remaining bytes can hold"));
      elements *= static_cast<std::size_t>(dim);
      shape.push_back(static_cast<Index>(dim));
    }
    out.values.push_back(CkptTensorLayout{r.counted(elements, sb, concat(label, " values")), elements});
    out.info.variables.push_back(CheckpointVariableInfo{std::move(name), std::move(shape)});
  }
}

/// The OPTM section of a version-1 file: an AdamOptimizer's state in Adam's own layout.
inline void parse_optimizer_section_v1(ByteReader& r, CkptLayout& out) {
  const std::uint32_t code = out.scalar_code;
  const std::size_t sb = checkpoint_scalar_bytes(code);
  const std::size_t kind_at = r.pos();
  std::string kind = r.str32("the optimizer kind", false);
  if (kind != "adam")
    r.fail(concat("section OPTM: optimizer kind '", ckpt_name(kind), "' at byte offset ", kind_at,
                  " is not one a version-1 file holds (version 1 holds 'adam' only)"));
  const std::size_t hyper_at = r.skip(6 * sb, "the Adam hyper-parameters and beta powers");
  for (std::size_t k = 0; k < 6; ++k) out.optimizer.scalars.push_back({kCkptV1AdamScalars[k], hyper_at + k * sb});
  double hp[6];
  for (std::size_t k = 0; k < 6; ++k) hp[k] = ckpt_get_as_double(r.data() + hyper_at + k * sb, code);
  const auto in_unit = [](double x) { return x >= 0.0 && x < 1.0; };
  if (!in_unit(hp[1]) || !in_unit(hp[2]))
    r.fail(concat("section OPTM: beta1 = ", hp[1], " and beta2 = ", hp[2], " at byte offset ", hyper_at + sb,
                  " must be in [0, 1)"));
  if (!(hp[3] >= 0.0))
    r.fail(concat("section OPTM: epsilon = ", hp[3], " at byte offset ", hyper_at + 3 * sb, " must be >= 0"));
  if (!in_unit(hp[4]) || !in_unit(hp[5]))
    r.fail(concat("section OPTM: beta1_power = ", hp[4], " and beta2_power = ", hp[5], " at byte offset ",
                  hyper_at + 4 * sb, " must be in [0, 1)"));
  const std::size_t step_at = r.pos();
  const std::uint64_t step = r.u64le("the Adam step");
  if (step > static_cast<std::uint64_t>(std::numeric_limits<long long>::max()))
    r.fail(concat("section OPTM: the step ", step, " at byte offset ", step_at, " is out of range"));
  const std::size_t slots_at = r.pos();
  const std::uint64_t slots = r.u64le("the slot count");
  const std::size_t n = out.info.variables.size();
  if (slots != 0 && slots != n)
    r.fail(concat("section OPTM: the slot count ", slots, " at byte offset ", slots_at,
                  " must be 0 (no step taken yet) or ", n, " (one per variable)"));
  if (slots == 0 && n > 0 && step != 0)
    r.fail(concat("section OPTM: no slots (byte offset ", slots_at, ") but step ", step, ": slots exist after a step"));
  for (std::size_t k = 0; k < slots; ++k) {
    const std::string& var = out.info.variables[k].name;
    const std::size_t name_at = r.pos();
    const std::string name = r.str32(concat("slot ", k, " name"), false);
    if (name != var)
      r.fail(concat("section OPTM: slot ", k, " at byte offset ", name_at, " is named '", ckpt_name(name),
                    "', expected '", ckpt_name(var), "' (variable ", k, ")"));
    const std::size_t count = out.values[k].count;
    const CkptTensorLayout m{r.counted(count, sb, concat("slot ", k, " ('", ckpt_name(var), "') m values")), count};
    const CkptTensorLayout v{r.counted(count, sb, concat("slot ", k, " ('", ckpt_name(var), "') v values")), count};
    for (std::size_t i = 0; i < count; ++i) {
      const double x = ckpt_get_as_double(r.data() + v.offset + i * sb, code);
      if (x < 0.0)
        r.fail(concat("section OPTM: slot ", k, " ('", ckpt_name(var), "') v[", i, "] = ", x, " at byte offset ",
                      v.offset + i * sb, " is negative"));
    }
    out.optimizer.slots.push_back({k, "m", m});
    out.optimizer.slots.push_back({k, "v", v});
  }
  out.info.has_optimizer = true;
  out.info.optimizer = std::move(kind);
  out.info.optimizer_counters["step"] = static_cast<long long>(step);
}

/// The OPTM section of a version-2 file: any optimizer's state, by name. Checks its structure
/// (unique, non-empty names; counters in range; slots of variables of MODL, with their shapes);
/// what the values mean is the optimizer's to check when the state is loaded into one.
inline void parse_optimizer_section_v2(ByteReader& r, CkptLayout& out) {
  const std::size_t sb = checkpoint_scalar_bytes(out.scalar_code);
  std::string kind = r.str32("the optimizer kind", false);

  const std::size_t scalars_at = r.pos();
  const std::uint64_t n_scalars = r.u64le("the scalar count");
  if (n_scalars > r.remaining() / (5 + sb))  // a name length, one name byte, a value
    r.fail(concat("section OPTM: the scalar count ", n_scalars, " at byte offset ", scalars_at, " cannot fit in the ",
                  r.remaining(), " bytes that remain in the section (each scalar needs at least ", 5 + sb, ")"));
  std::set<std::string> seen;
  for (std::size_t k = 0; k < n_scalars; ++k) {
    const std::size_t name_at = r.pos();
    std::string name = r.str32(concat("scalar ", k, " name"), false);
    if (!seen.insert(name).second)
      r.fail(
          concat("section OPTM: scalar ", k, " at byte offset ", name_at, " repeats the name '", ckpt_name(name), "'"));
    const std::size_t at = r.skip(sb, concat("scalar ", k, " ('", ckpt_name(name), "') value"));
    out.optimizer.scalars.push_back({std::move(name), at});
  }

  const std::size_t counters_at = r.pos();
  const std::uint64_t n_counters = r.u64le("the counter count");
  if (n_counters > r.remaining() / 13)  // a name length, one name byte, a u64
    r.fail(concat("section OPTM: the counter count ", n_counters, " at byte offset ", counters_at,
                  " cannot fit in the ", r.remaining(),
                  " bytes that remain in the section (each counter needs at least 13)"));
  for (std::size_t k = 0; k < n_counters; ++k) {
    const std::size_t name_at = r.pos();
    std::string name = r.str32(concat("counter ", k, " name"), false);
    if (out.info.optimizer_counters.count(name) != 0)
      r.fail(concat("section OPTM: counter ", k, " at byte offset ", name_at, " repeats the name '", ckpt_name(name),
                    "'"));
    const std::size_t value_at = r.pos();
    const std::uint64_t value = r.u64le(concat("counter ", k, " ('", ckpt_name(name), "') value"));
    if (value > static_cast<std::uint64_t>(std::numeric_limits<long long>::max()))
      r.fail(concat("section OPTM: counter ", k, " ('", ckpt_name(name), "') = ", value, " at byte offset ", value_at,
                    " is out of range (at most 2^63 - 1)"));
    out.info.optimizer_counters.emplace(std::move(name), static_cast<long long>(value));
  }

  std::map<std::string, std::size_t> variable_index;
  for (std::size_t k = 0; k < out.info.variables.size(); ++k) variable_index.emplace(out.info.variables[k].name, k);
  const std::size_t slots_at = r.pos();
  const std::uint64_t n_slots = r.u64le("the slot count");
  if (n_slots > r.remaining() / 14)  // two names of at least one byte each, a rank
    r.fail(concat("section OPTM: the slot count ", n_slots, " at byte offset ", slots_at, " cannot fit in the ",
                  r.remaining(), " bytes that remain in the section (each slot needs at least 14)"));
  std::set<std::pair<std::string, std::string>> seen_slots;
  for (std::size_t k = 0; k < n_slots; ++k) {
    const std::size_t var_at = r.pos();
    const std::string var = r.str32(concat("slot ", k, " variable"), false);
    const auto it = variable_index.find(var);
    if (it == variable_index.end())
      r.fail(concat("section OPTM: slot ", k, " at byte offset ", var_at, " belongs to '", ckpt_name(var),
                    "', not a variable of section MODL"));
    std::string name = r.str32(concat("slot ", k, " name"), false);
    const std::string label = concat("slot ", k, " ('", ckpt_name(name), "' of '", ckpt_name(var), "')");
    if (!seen_slots.insert({var, name}).second)
      r.fail(concat("section OPTM: ", label, " at byte offset ", var_at, " appears twice"));
    const std::size_t rank_at = r.pos();
    const std::uint32_t rank = r.u32le(concat(label, " rank"));
    const std::vector<Index>& shape = out.info.variables[it->second].shape;
    if (rank != shape.size())
      r.fail(concat("section OPTM: ", label, " has rank ", rank, " at byte offset ", rank_at, ", its variable ",
                    shape.size()));
    for (std::uint32_t d = 0; d < rank; ++d) {
      const std::size_t dim_at = r.pos();
      const std::uint64_t dim = r.u64le(concat(label, " dimension ", d));
      if (dim != static_cast<std::uint64_t>(shape[d]))
        r.fail(concat("section OPTM: ", label, " dimension ", d, " = ", dim, " at byte offset ", dim_at,
                      " differs from its variable's shape ", shape_string(shape)));
    }
    const std::size_t count = out.values[it->second].count;
    const CkptTensorLayout values{r.counted(count, sb, concat(label, " values")), count};
    out.optimizer.slots.push_back({it->second, std::move(name), values});
  }
  out.info.has_optimizer = true;
  out.info.optimizer = std::move(kind);
}

/// Fills the info's description of the optimizer from its layout (scalars, slots, step).
inline void describe_optimizer(const std::uint8_t* data, CkptLayout& out) {
  for (const auto& s : out.optimizer.scalars)
    out.info.optimizer_scalars[s.name] = ckpt_get_as_double(data + s.offset, out.scalar_code);
  for (const auto& s : out.optimizer.slots)
    out.info.optimizer_slots.push_back(
        {out.info.variables[s.variable].name, s.name, out.info.variables[s.variable].shape});
  const auto step = out.info.optimizer_counters.find("step");
  out.info.optimizer_step = step == out.info.optimizer_counters.end() ? 0 : step->second;
}

inline void parse_metadata_section(ByteReader& r, CkptLayout& out) {
  const std::size_t count_at = r.pos();
  const std::uint64_t count = r.u64le("the entry count");
  // Each entry takes at least 9 bytes: two lengths and one key byte.
  if (count > r.remaining() / 9)
    r.fail(concat("section META: the entry count ", count, " at byte offset ", count_at, " cannot fit in the ",
                  r.remaining(), " bytes that remain in the section (each entry needs at least 9)"));
  for (std::size_t k = 0; k < count; ++k) {
    const std::size_t key_at = r.pos();
    std::string key = r.str32(concat("metadata entry ", k, " key"), false);
    std::string value = r.str32(concat("metadata entry ", k, " ('", ckpt_name(key), "') value"), true);
    if (out.info.metadata.count(key) != 0)
      r.fail(concat("section META: metadata entry ", k, " at byte offset ", key_at, " repeats the key '",
                    ckpt_name(key), "'"));
    out.info.metadata.emplace(std::move(key), std::move(value));
  }
}

/// Validates a whole checkpoint held in memory and says where everything is. `ctx` starts every
/// message ("load_checkpoint: 'file'"). Throws IOError for anything malformed.
inline CkptLayout parse_checkpoint_layout(const std::uint8_t* data, std::size_t size, const std::string& ctx) {
  if (data == nullptr && size != 0) throw IOError(concat(ctx, ": null data pointer with size ", size));
  const CkptHeader h = check_checkpoint_header(data, size, ctx);
  if (h.file_size > size)
    throw IOError(concat(ctx, ": truncated: the header declares ", h.file_size, " bytes, found ", size));
  if (h.file_size < size)
    throw IOError(concat(ctx, ": trailing bytes: the header declares ", h.file_size, " bytes, found ", size, " (",
                         size - h.file_size, " extra)"));
  const std::uint32_t stored = load_le<std::uint32_t>(data + size - 4);
  const std::uint32_t computed = crc32(data, size - 4);
  if (stored != computed)
    throw IOError(concat(ctx, ": checksum mismatch: the CRC-32 stored at byte offset ", size - 4, " is ", hex32(stored),
                         ", the bytes 0 to ", size - 5, " give ", hex32(computed), "; the file is corrupt"));
  CkptLayout out;
  out.scalar_code = h.scalar_code;
  out.info.version = static_cast<int>(h.version);
  out.info.scalar_type = checkpoint_scalar_name(h.scalar_code);
  out.info.file_size = h.file_size;

  const std::size_t end = size - 4;
  std::size_t pos = kCheckpointHeaderBytes;
  bool have_model = false, have_optimizer = false, have_meta = false;
  while (pos < end) {
    ByteReader hr(data, pos, end, ctx, "section header", "before the checksum");
    const std::size_t tag_at = hr.skip(4, "the section tag");
    const std::uint64_t len = hr.u64le("the section length");
    const std::string tag = printable(data + tag_at, 4, 64, '\'');
    if (len > hr.remaining())
      hr.fail(concat("section '", tag, "' at byte offset ", pos, " declares ", len, " payload bytes, only ",
                     hr.remaining(), " remain before the checksum"));
    const std::size_t from = hr.pos(), to = from + static_cast<std::size_t>(len);
    ByteReader r(data, from, to, ctx, concat("section ", tag), "in the section");
    if (!have_model && tag != kCkptTagModel)
      r.fail(concat("the first section is '", tag, "' at byte offset ", pos, ", expected '", kCkptTagModel, "'"));
    const auto once = [&](bool& seen) {
      if (seen) r.fail(concat("section '", tag, "' at byte offset ", pos, " appears twice"));
      seen = true;
    };
    if (tag == kCkptTagModel) {
      once(have_model);
      parse_model_section(r, out);
    } else if (tag == kCkptTagOptimizer) {
      once(have_optimizer);
      if (h.version == 1)
        parse_optimizer_section_v1(r, out);
      else
        parse_optimizer_section_v2(r, out);
      describe_optimizer(data, out);
    } else if (tag == kCkptTagMeta) {
      once(have_meta);
      parse_metadata_section(r, out);
    } else if (data[tag_at] >= 'a' && data[tag_at] <= 'z') {
      r.skip(r.remaining(), "an ancillary section");  // a lowercase first letter: safe to skip
    } else {
      r.fail(concat("unknown critical section '", tag, "' at byte offset ", pos,
                    " (a section this cellflow cannot read; written by a newer version?)"));
    }
    if (r.remaining() != 0)
      r.fail(concat("section '", tag, "' at byte offset ", pos, " has ", r.remaining(),
                    " unread bytes at its end (from byte offset ", r.pos(), ")"));
    pos = to;
  }
  if (!have_model) throw IOError(concat(ctx, ": no '", kCkptTagModel, "' section"));
  return out;
}

struct CkptFileCloser {
  void operator()(std::FILE* f) const noexcept {
    if (f != nullptr) std::fclose(f);
  }
};

inline std::size_t ckpt_read_some(std::FILE* f, std::uint8_t* out, std::size_t n, const std::string& ctx) {
  errno = 0;
  const std::size_t got = std::fread(out, 1, n, f);
  if (std::ferror(f)) {
    const int err = errno;
    throw IOError(concat(ctx, ": read error: ", err != 0 ? std::strerror(err) : "unknown error"));
  }
  return got;
}

/// The bytes of a checkpoint file, exactly as many as its header declares. The buffer grows only
/// as bytes arrive (a header claiming 2^60 bytes costs nothing); the magic, version and scalar
/// type are checked on the first 24 bytes, before anything else is read.
inline std::vector<std::uint8_t> read_checkpoint_file(const std::string& path, const std::string& ctx) {
  if (path.empty()) throw IOError(concat(ctx, ": the path is empty"));
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw IOError(concat(ctx, ": is a directory, not a checkpoint file"));
  errno = 0;
  std::unique_ptr<std::FILE, CkptFileCloser> file(std::fopen(path.c_str(), "rb"));
  if (!file) {
    const int err = errno;
    throw IOError(concat(ctx, ": cannot open for reading: ", err != 0 ? std::strerror(err) : "unknown error"));
  }
  std::vector<std::uint8_t> buf(kCheckpointHeaderBytes);
  std::size_t have = ckpt_read_some(file.get(), buf.data(), buf.size(), ctx);
  const CkptHeader h = check_checkpoint_header(buf.data(), have, ctx);
  const std::uint64_t want = h.file_size;
  while (have < want) {
    const std::uint64_t chunk = std::min<std::uint64_t>(want - have, std::max<std::size_t>(have, std::size_t(1) << 16));
    buf.resize(have + static_cast<std::size_t>(chunk));
    const std::size_t got = ckpt_read_some(file.get(), buf.data() + have, static_cast<std::size_t>(chunk), ctx);
    have += got;
    if (got < chunk) break;
  }
  buf.resize(have);
  if (have < want) throw IOError(concat(ctx, ": truncated: the header declares ", want, " bytes, the file has ", have));
  std::uint8_t scratch[4096];
  std::uint64_t extra = 0;
  const std::uint64_t extra_cap = std::uint64_t(1) << 26;
  while (extra <= extra_cap) {
    const std::size_t got = ckpt_read_some(file.get(), scratch, sizeof scratch, ctx);
    if (got == 0) break;
    extra += got;
  }
  if (extra > 0)
    throw IOError(concat(ctx, ": trailing bytes: the header declares ", want, " bytes, the file has ",
                         extra > extra_cap ? "more than " : "", want + extra, " (",
                         extra > extra_cap ? "more than " : "", extra, " extra)"));
  return buf;
}

/// Appends a section tag and a u64 length placeholder; returns the placeholder's offset for
/// ByteWriter::end_length.
inline std::size_t begin_section(ByteWriter& w, const char* tag) {
  w.raw(reinterpret_cast<const std::uint8_t*>(tag), 4);
  return w.begin_length();
}

/// Whether version 1 can express `s` for `vars`: an Adam state with exactly Adam's scalars and
/// counter, and no slots or exactly "m" and "v" for every variable.
template <class T>
bool v1_can_express(const OptimizerState<T>& s, const VariableList<T>& vars) {
  if (s.kind != "adam" || s.scalars.size() != 6 || s.counters.size() != 1 || s.counters.count("step") == 0)
    return false;
  for (const char* name : kCkptV1AdamScalars)
    if (s.scalars.count(name) == 0) return false;
  if (s.slots.empty()) return true;
  if (s.slots.size() != 2 * vars.size()) return false;
  for (const auto& v : vars)
    if (s.find_slot(v.name, "m") == nullptr || s.find_slot(v.name, "v") == nullptr) return false;
  return true;
}

/// ValueError unless `s` (exported by the optimizer being saved) can be written for `vars`: a
/// kind, non-empty names, counters >= 0, slots of variables of the list with their shapes.
template <class T>
void check_state_for_file(const OptimizerState<T>& s, const VariableList<T>& vars, const std::string& ctx) {
  constexpr std::uint64_t max_len = std::numeric_limits<std::uint32_t>::max();
  const auto bad = [&](const std::string& what) {
    throw ValueError(concat(ctx, ": the optimizer's state cannot be saved: ", what));
  };
  if (s.kind.empty() || s.kind.size() > max_len) bad("its kind is empty or longer than 2^32-1 bytes");
  for (const auto& scalar : s.scalars)
    if (scalar.first.empty() || scalar.first.size() > max_len) bad("a scalar has an empty or too long name");
  for (const auto& [name, value] : s.counters) {
    if (name.empty() || name.size() > max_len) bad("a counter has an empty or too long name");
    if (value < 0) bad(concat("the counter '", name, "' is negative (", value, ")"));
  }
  for (const auto& [key, slot] : s.slots) {
    if (key.second.empty() || key.second.size() > max_len)
      bad(concat("a slot of '", key.first, "' has an empty or too long name"));
    const VariableRef<T>* v = vars.find(key.first);
    if (v == nullptr)
      bad(concat("the slot '", key.second, "' of '", key.first, "' belongs to no variable of the list"));
    if (slot.shape != v->shape || slot.value.rows() != v->value->rows() || slot.value.cols() != v->value->cols())
      bad(concat("the slot '", key.second, "' of '", key.first, "' is ", shape_string(slot.shape), " (",
                 slot.value.rows(), "x", slot.value.cols(), "), the variable ", shape_string(v->shape)));
  }
}

/// The bytes of a checkpoint of `vars`, optionally `opt`'s state and `meta`, after checking that
/// they can be written and read back. Throws ValueError starting with `ctx`.
template <class T>
std::vector<std::uint8_t> serialize_checkpoint(const VariableList<T>& vars, const Optimizer<T>* opt,
                                               const CheckpointMetadata& meta, const std::string& ctx) {
  constexpr std::uint32_t code = checkpoint_scalar_code<T>();
  constexpr std::uint64_t max_len = std::numeric_limits<std::uint32_t>::max();
  for (std::size_t k = 0; k < vars.size(); ++k) {
    const auto& v = vars[k];
    if (v.name.empty()) throw ValueError(concat(ctx, ": variable ", k, " has an empty name"));
    if (v.name.size() > max_len)
      throw ValueError(concat(ctx, ": variable ", k, " has a name longer than 2^32-1 bytes"));
    if (v.shape.size() > kCheckpointMaxRank)
      throw ValueError(concat(ctx, ": ", ckpt_var_label(k, v.name), " has rank ", v.shape.size(), ", more than ",
                              kCheckpointMaxRank));
    Index elements = 1;
    for (Index d : v.shape) {
      if (d < 0)
        throw ValueError(
            concat(ctx, ": ", ckpt_var_label(k, v.name), " has a negative dimension in ", shape_string(v.shape)));
      elements *= d;
    }
    if (v.value == nullptr || elements != v.value->size())
      throw ValueError(concat(ctx, ": ", ckpt_var_label(k, v.name), " has shape ", shape_string(v.shape), " but holds ",
                              v.value == nullptr ? Index(0) : v.value->size(), " values"));
  }
  for (const auto& [key, value] : meta) {
    if (key.empty()) throw ValueError(concat(ctx, ": a metadata key is empty"));
    if (key.size() > max_len || value.size() > max_len)
      throw ValueError(concat(ctx, ": metadata entry '", key.substr(0, 64), "' is longer than 2^32-1 bytes"));
  }
  OptimizerState<T> state;
  bool version1 = true;
  if (opt != nullptr) {
    try {
      state = opt->export_state(vars);
    } catch (const Error& e) {
      throw ValueError(concat(ctx, ": cannot save the optimizer's state: ", e.what()));
    }
    const std::vector<std::string> problems = opt->state_problems(state, vars);
    if (!problems.empty()) {
      std::string list;
      for (const std::string& p : problems) list += "\n  " + p;
      throw ValueError(concat(ctx, ": the optimizer's state cannot be saved, it would not load back:", list));
    }
    check_state_for_file(state, vars, ctx);
    version1 = v1_can_express(state, vars);
  }

  ByteWriter w;
  w.raw(kCheckpointMagic, 8);
  w.u32le(version1 ? 1 : 2);
  w.u32le(code);
  w.u64le(0);  // file size, patched below

  std::size_t at = begin_section(w, kCkptTagModel);
  w.u64le(vars.size());
  for (const auto& v : vars) {
    w.str32(v.name);
    w.u32le(static_cast<std::uint32_t>(v.shape.size()));
    for (Index d : v.shape) w.u64le(static_cast<std::uint64_t>(d));
    w.values_le(v.value->data(), static_cast<std::size_t>(v.value->size()));
  }
  w.end_length(at);

  const auto tensor = [&w](const Matrix<T>& m) { w.values_le(m.data(), static_cast<std::size_t>(m.size())); };
  if (opt != nullptr && version1) {  // Adam's own layout
    at = begin_section(w, kCkptTagOptimizer);
    w.str32(state.kind);
    for (const char* name : kCkptV1AdamScalars) w.le(state.scalars.at(name));
    w.u64le(static_cast<std::uint64_t>(state.counters.at("step")));
    w.u64le(state.slots.empty() ? 0 : vars.size());
    if (!state.slots.empty())
      for (const auto& v : vars) {
        w.str32(v.name);
        tensor(state.find_slot(v.name, "m")->value);
        tensor(state.find_slot(v.name, "v")->value);
      }
    w.end_length(at);
  } else if (opt != nullptr) {  // the generic layout of version 2
    at = begin_section(w, kCkptTagOptimizer);
    w.str32(state.kind);
    w.u64le(state.scalars.size());
    for (const auto& [name, value] : state.scalars) {
      w.str32(name);
      w.le(value);
    }
    w.u64le(state.counters.size());
    for (const auto& [name, value] : state.counters) {
      w.str32(name);
      w.u64le(static_cast<std::uint64_t>(value));
    }
    w.u64le(state.slots.size());
    for (const auto& v : vars)  // in the list's order, then by slot name
      for (auto it = state.slots.lower_bound({v.name, std::string()});
           it != state.slots.end() && it->first.first == v.name; ++it) {
        w.str32(v.name);
        w.str32(it->first.second);
        w.u32le(static_cast<std::uint32_t>(v.shape.size()));
        for (Index d : v.shape) w.u64le(static_cast<std::uint64_t>(d));
        tensor(it->second.value);
      }
    w.end_length(at);
  }

  if (!meta.empty()) {
    at = begin_section(w, kCkptTagMeta);
    w.u64le(meta.size());
    for (const auto& [key, value] : meta) {
      w.str32(key);
      w.str32(value);
    }
    w.end_length(at);
  }

  w.patch_u64le(16, w.size() + 4);
  w.u32le(crc32(w.bytes().data(), w.size()));
  return w.take();
}

template <class T>
Matrix<T> ckpt_decode(const std::vector<std::uint8_t>& bytes, const CkptTensorLayout& t, Index rows, Index cols) {
  Matrix<T> m(rows, cols);
  ByteReader r(bytes.data(), t.offset, t.offset + t.count * sizeof(T), "checkpoint");
  r.values_le(t.count, m.data(), "values");
  return m;
}

/// When every name the model misses and every name the file has in excess pair up by one change
/// of scope prefix ("rnn/multi_rnn_cell/..." in the file, "multi_rnn_cell/..." in the model), a
/// hint saying so; else "".
inline std::string scope_prefix_hint(const std::vector<std::string>& model_only,
                                     const std::vector<std::string>& file_only) {
  if (model_only.empty() || model_only.size() != file_only.size()) return "";
  const std::set<std::string> file_set(file_only.begin(), file_only.end());
  // The prefixes that turn m into f: m = pm + rest, f = pf + rest, rest starting after a '/' in
  // both (or being the whole name).
  const auto candidates = [](const std::string& m, const std::string& f) {
    std::vector<std::pair<std::string, std::string>> out;
    for (std::size_t len = 1; len <= std::min(m.size(), f.size()); ++len) {
      if (m[m.size() - len] != f[f.size() - len]) break;
      const std::size_t pm = m.size() - len, pf = f.size() - len;
      if ((pm == 0 || m[pm - 1] == '/') && (pf == 0 || f[pf - 1] == '/') && !(pm == 0 && pf == 0))
        out.emplace_back(m.substr(0, pm), f.substr(0, pf));
    }
    std::reverse(out.begin(), out.end());  // the longest common part first: the smallest change of prefix
    return out;
  };
  const std::string& m0 = model_only.front();
  for (const std::string& f0 : file_only)
    for (const auto& [pm, pf] : candidates(m0, f0)) {
      if (pm == pf) continue;
      bool all = true;
      for (const std::string& m : model_only)
        if (m.compare(0, pm.size(), pm) != 0 || file_set.count(pf + m.substr(pm.size())) == 0) {
          all = false;
          break;
        }
      if (!all) continue;
      const std::string example =
          concat(" (e.g. file '", ckpt_name(pf + m0.substr(pm.size())), "', model '", ckpt_name(m0), "')");
      const auto scope = [](const std::string& prefix) { return ckpt_name(prefix.substr(0, prefix.size() - 1)); };
      if (pm.empty())
        return concat("hint: only a scope prefix differs: the file's names start with '", ckpt_name(pf),
                      "', the model's do not", example, "; add the model's modules under that scope, e.g. vars.add(",
                      "module, \"", scope(pf), "\")");
      if (pf.empty())
        return concat("hint: only a scope prefix differs: the model's names start with '", ckpt_name(pm),
                      "', the file's do not", example, "; add the model's modules without the scope '", scope(pm), "'");
      return concat("hint: only a scope prefix differs: the file's names start with '", ckpt_name(pf),
                    "' where the model's start with '", ckpt_name(pm), "'", example,
                    "; add the model's modules under the scope '", scope(pf), "' instead of '", scope(pm), "'");
    }
  return "";
}

}  // namespace detail

/// Validates a checkpoint held in memory (the bytes of a file; `source` names it in messages)
/// exactly as load_checkpoint does before it looks at a model, and describes it. Throws IOError
/// for anything malformed; never reads outside [data, data + size) and never allocates more
/// than the bytes present justify. The entry point for fuzzers.
inline CheckpointInfo parse_checkpoint(const std::uint8_t* data, std::size_t size, const std::string& source) {
  return detail::parse_checkpoint_layout(data, size, detail::concat("parse_checkpoint: '", source, "'")).info;
}

/// Reads and fully validates (checksum included) a checkpoint file, and describes it: format
/// version, scalar type, variables with shapes, the optimizer's kind, scalars, counters and
/// slots, metadata.
inline CheckpointInfo read_checkpoint_info(const std::string& path) {
  const std::string ctx = detail::concat("read_checkpoint_info: '", path, "'");
  const std::vector<std::uint8_t> bytes = detail::read_checkpoint_file(path, ctx);
  return detail::parse_checkpoint_layout(bytes.data(), bytes.size(), ctx).info;
}

/// The bytes save_checkpoint would write (the whole file), e.g. to store a checkpoint elsewhere.
/// Throws ValueError for a list or optimizer that cannot be saved (see save_checkpoint).
template <class T>
std::vector<std::uint8_t> checkpoint_bytes(const VariableList<T>& vars,
                                           const detail::identity_t<Optimizer<T>>* optimizer = nullptr,
                                           const CheckpointMetadata& metadata = {}) {
  return detail::serialize_checkpoint(vars, optimizer, metadata, "checkpoint_bytes");
}

/// Saves every variable of `vars` (names, shapes, values), the whole state of `optimizer` when
/// given (its OptimizerState: hyper-parameters, counters, slots by variable name) and `metadata`,
/// atomically, by the policy of write_file_atomically (io/atomic_file.hpp). Writes format
/// version 1 without an optimizer or with an AdamOptimizer, version 2 with any other. Throws
/// ValueError (nothing written) when the optimizer's state does not match `vars` (or would not
/// load back), a name or metadata key is empty, or a shape disagrees with its values; IOError
/// when the file cannot be written, in which case the temporary file is removed and a previous
/// file at `path` is unchanged.
template <class T>
void save_checkpoint(const std::string& path, const VariableList<T>& vars,
                     const detail::identity_t<Optimizer<T>>* optimizer = nullptr,
                     const CheckpointMetadata& metadata = {}) {
  const std::string ctx = detail::concat("save_checkpoint: '", path, "'");
  const std::vector<std::uint8_t> bytes = detail::serialize_checkpoint(vars, optimizer, metadata, ctx);
  write_file_atomically(path, bytes, "save_checkpoint");
}

namespace detail {
template <class T>
CheckpointInfo load_checkpoint_from(const std::vector<std::uint8_t>& bytes, VariableList<T>& vars,
                                    Optimizer<T>* optimizer, const std::string& ctx);
}  // namespace detail

/// Loads a checkpoint into `vars` and, when `optimizer` is given, replaces the optimizer's whole
/// state with the file's (hyper-parameters included: it then continues bitwise as the saved one
/// would have; change the learning rate afterwards with set_learning_rate if wanted). Variables
/// and slots are matched by name, so the file's order may differ from the model's; every model
/// variable must be in the file with the same shape and the file must hold no other (when only
/// a scope prefix differs, the error says so). Without `optimizer`, optimizer state in the file
/// is ignored; with one, the file must hold the state of an optimizer of the same kind, which
/// the optimizer's check_state accepts (a ValueError listing every problem otherwise).
///
/// Everything is checked before anything is assigned: on any error (IOError for an unreadable
/// or malformed file, ValueError for one that does not fit) `vars` and `optimizer` are
/// unchanged. Returns the file's description (metadata included).
template <class T>
CheckpointInfo load_checkpoint(const std::string& path, VariableList<T>& vars,
                               detail::identity_t<Optimizer<T>>* optimizer = nullptr) {
  const std::string ctx = detail::concat("load_checkpoint: '", path, "'");
  return detail::load_checkpoint_from(detail::read_checkpoint_file(path, ctx), vars, optimizer, ctx);
}

/// load_checkpoint from a checkpoint's bytes (checkpoint_bytes, or a file read elsewhere); the
/// messages name `source` instead of a file. Same checks, same all-or-nothing assignment.
template <class T>
CheckpointInfo load_checkpoint_bytes(const std::vector<std::uint8_t>& bytes, VariableList<T>& vars,
                                     detail::identity_t<Optimizer<T>>* optimizer = nullptr,
                                     const std::string& source = "checkpoint bytes") {
  return detail::load_checkpoint_from(bytes, vars, optimizer, detail::concat("load_checkpoint_bytes: ", source));
}

namespace detail {

template <class T>
CheckpointInfo load_checkpoint_from(const std::vector<std::uint8_t>& bytes, VariableList<T>& vars,
                                    Optimizer<T>* optimizer, const std::string& ctx) {
  using detail::concat;
  detail::CkptLayout layout = detail::parse_checkpoint_layout(bytes.data(), bytes.size(), ctx);
  const auto& file_vars = layout.info.variables;

  constexpr std::uint32_t code = detail::checkpoint_scalar_code<T>();
  if (layout.scalar_code != code)
    throw ValueError(concat(ctx, ": the file holds ", layout.info.scalar_type, " values, the model is ",
                            detail::checkpoint_scalar_name(code), " (", code == detail::kCkptF32 ? "float" : "double",
                            "); load it into a model of ",
                            layout.scalar_code == detail::kCkptF32 ? "float" : "double"));

  // Match the model's variables to the file's by name; list every difference.
  std::map<std::string, std::size_t> by_name;
  for (std::size_t k = 0; k < file_vars.size(); ++k) by_name.emplace(file_vars[k].name, k);
  std::vector<std::size_t> file_index(vars.size());
  std::vector<bool> matched(file_vars.size(), false);
  std::vector<std::string> problems, model_only, file_only;
  for (std::size_t j = 0; j < vars.size(); ++j) {
    const auto& v = vars[j];
    const auto it = by_name.find(v.name);
    if (it == by_name.end()) {
      problems.push_back(concat("missing from the file: '", v.name, "' ", shape_string(v.shape)));
      model_only.push_back(v.name);
      continue;
    }
    matched[it->second] = true;
    file_index[j] = it->second;
    if (file_vars[it->second].shape != v.shape)
      problems.push_back(concat("shape differs: '", v.name, "' model expects ", shape_string(v.shape), ", file has ",
                                shape_string(file_vars[it->second].shape)));
  }
  for (std::size_t k = 0; k < file_vars.size(); ++k)
    if (!matched[k]) {
      problems.push_back(
          concat("not in the model: '", detail::ckpt_name(file_vars[k].name), "' ", shape_string(file_vars[k].shape)));
      file_only.push_back(file_vars[k].name);
    }
  // The optimizer: a file without one, or with another kind, whatever the variables.
  std::string optimizer_problem;
  if (optimizer != nullptr && !layout.info.has_optimizer)
    optimizer_problem =
        "optimizer state requested but the file holds none (it was saved without an optimizer); load it without "
        "one to restore the variables only";
  else if (optimizer != nullptr && layout.info.optimizer != optimizer->kind())
    optimizer_problem =
        concat("the file holds the state of a '", detail::ckpt_name(layout.info.optimizer),
               "' optimizer, the optimizer given is '", optimizer->kind(), "'; load the file into a '",
               detail::ckpt_name(layout.info.optimizer), "' optimizer, or without one to restore the variables only");
  if (!problems.empty()) {
    std::string list;
    for (const auto& p : problems) list += "\n  " + p;
    if (!optimizer_problem.empty()) list += "\n  and the optimizer: " + optimizer_problem;
    const std::string hint = detail::scope_prefix_hint(model_only, file_only);
    if (!hint.empty()) list += "\n" + hint;
    throw ValueError(concat(ctx, ": the file's variables do not match the model's (", problems.size(),
                            problems.size() == 1 ? " difference" : " differences", "; the file has ", file_vars.size(),
                            " variables, the model ", vars.size(), "):", list));
  }
  if (!optimizer_problem.empty()) throw ValueError(concat(ctx, ": ", optimizer_problem));

  // Decode everything into temporaries.
  std::vector<Matrix<T>> values;
  values.reserve(vars.size());
  for (std::size_t j = 0; j < vars.size(); ++j) {
    const auto& v = vars[j];
    const auto& t = layout.values[file_index[j]];
    if (static_cast<Index>(t.count) != v.value->size())  // only a VariableRef whose shape disagrees with its value
      throw ValueError(concat(ctx, ": model variable '", v.name, "' has shape ", shape_string(v.shape), " but holds ",
                              v.value->size(), " values"));
    values.push_back(detail::ckpt_decode<T>(bytes, t, v.value->rows(), v.value->cols()));
  }
  if (optimizer != nullptr) {
    OptimizerState<T> state;
    state.kind = layout.info.optimizer;
    for (const auto& s : layout.optimizer.scalars) state.scalars[s.name] = detail::load_le<T>(bytes.data() + s.offset);
    state.counters = layout.info.optimizer_counters;
    for (const auto& s : layout.optimizer.slots) {
      const auto& fv = file_vars[s.variable];
      const VariableRef<T>& v = *vars.find(fv.name);  // the variables matched above
      state.slots[{fv.name, s.name}] =
          OptimizerSlot<T>{fv.shape, detail::ckpt_decode<T>(bytes, s.values, v.value->rows(), v.value->cols())};
    }
    const std::vector<std::string> misfit = optimizer->state_problems(state, vars);
    if (!misfit.empty()) {
      std::string list;
      for (const auto& p : misfit) list += "\n  " + p;
      throw ValueError(concat(ctx, ": the file's '", detail::ckpt_name(state.kind),
                              "' state does not fit the optimizer (", misfit.size(),
                              misfit.size() == 1 ? " problem" : " problems", "):", list));
    }
    optimizer->import_state(state, vars);  // checked above: all or nothing, and first
  }
  // Every check passed: assign. Same sizes, so these copies do not allocate.
  for (std::size_t j = 0; j < vars.size(); ++j) *vars[j].value = values[j];
  return std::move(layout.info);
}

}  // namespace detail

}  // namespace cellflow::io
