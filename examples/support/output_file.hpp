// The one way the example programs write files: mnist_rnn's checkpoint (--save), CSV (--csv) and
// chart (--plot) all go through write_output_file, and check_output_file tests a target at
// start-up, before any data is loaded or any training is done.
//
// Both are cellflow's own (io/atomic_file.hpp), so the examples follow the library's one policy:
// * `path` names a file. A symbolic link is followed and the file it points to is replaced. An
//   existing directory, a non-regular file (device, pipe, socket) or a read-only file is refused;
//   the directory must exist.
// * The bytes go to a new temporary file ".<file>.tmp-<host>-<pid>-<random>" in the same
//   directory, which is written in full, synced, closed and renamed over the target: a reader
//   sees the old file or the new one, never a mix, and on any failure the temporary file is
//   removed and the old file is left as it was. A save killed midway leaves its temporary file,
//   which the next save of the same target removes.
// * Errors are cellflow::IOError "<op>: '<path>': <what failed>", `op` being the option that
//   named the file, e.g. "--csv: '/tmp/runs/a.csv': the directory '/tmp/runs' does not exist".
#pragma once

#include <string>

#include "cellflow/io/atomic_file.hpp"

namespace support {

/// Checks that `path` can be written by write_output_file, without touching it (the checks of the
/// policy, then a temporary file created and removed in its directory). Throws IOError
/// "<op>: '<path>': <problem>".
inline void check_output_file(const std::string& path, const std::string& op) {
  cellflow::io::check_writable(path, op);
}

/// Writes `bytes` to `path` atomically (see the policy above). Throws IOError "<op>: '<path>': ...";
/// on failure a previous file at `path` is unchanged and no temporary file is left.
inline void write_output_file(const std::string& path, const std::string& bytes, const std::string& op) {
  cellflow::io::write_file_atomically(path, bytes, op);
}

}  // namespace support
