// The progress of one training epoch on stdout: on a terminal a bar redrawn after every batch
// (batches, loss, samples/s, ETA), erased when the epoch ends (or an error ends it, so that the
// message starts a clean line); piped or redirected, a plain line at each quarter of the epoch,
// so that a log file stays readable.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <string>

namespace support {

/// "42s", "3m05s", "1h02m".
inline std::string format_seconds(double s) {
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%dh%02dm", static_cast<int>(s / 3600), static_cast<int>(s / 60) % 60);
  else if (s >= 60)
    std::snprintf(buf, sizeof buf, "%dm%02ds", static_cast<int>(s / 60), static_cast<int>(s) % 60);
  else
    std::snprintf(buf, sizeof buf, "%.0fs", s);
  return buf;
}

/// A progress line per batch on a terminal, four plain lines per epoch otherwise.
class Progress {
 public:
  Progress(long long epoch, std::size_t batches) : epoch_(epoch), batches_(batches), tty_(isatty(STDOUT_FILENO) == 1) {}
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;
  ~Progress() { finish(); }

  /// After `done` of the epoch's batches: the mean loss so far, the speed and the time left.
  void update(std::size_t done, double loss, double samples_per_second, double eta) {
    if (tty_) {
      const int width = 24, filled = static_cast<int>(width * done / batches_);
      std::string bar(static_cast<std::size_t>(filled), '=');
      if (filled < width) bar += '>' + std::string(static_cast<std::size_t>(width - filled - 1), ' ');
      std::printf("\r\033[K  epoch %lld [%s] %zu/%zu  loss %.4f  %.0f samples/s  ETA %s", epoch_, bar.c_str(), done,
                  batches_, loss, samples_per_second, format_seconds(eta).c_str());
      std::fflush(stdout);
      drawn_ = true;
    } else {
      const std::size_t every = std::max<std::size_t>(1, batches_ / 4);
      if (done % every == 0 && done != batches_)
        std::printf("  epoch %lld: %zu/%zu batches, loss %.4f, %.0f samples/s, ETA %s\n", epoch_, done, batches_, loss,
                    samples_per_second, format_seconds(eta).c_str());
    }
  }

  /// Erases the bar (on a terminal) before the epoch's result is printed.
  void finish() {
    if (!drawn_) return;
    std::printf("\r\033[K");
    std::fflush(stdout);
    drawn_ = false;
  }

 private:
  long long epoch_;
  std::size_t batches_;
  bool tty_, drawn_ = false;
};

}  // namespace support
