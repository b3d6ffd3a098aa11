// A character language model: the classic TensorFlow 1.x char-RNN on cellflow's public API.
//
//   ids [batch, steps] -> embedding -> MultiRNNCell of BasicLSTMCell (dynamic_rnn, initial_state
//   = the state the previous chunk ended in) -> tf.layers.dense on every step -> sequence_loss,
//   Adam, tf.clip_by_global_norm
//
// The text is cut into --batch contiguous streams; each training step reads the next --steps
// characters of every stream and carries each stream's final LSTM state into the next step
// (truncated backpropagation through time), as TF's PTB and char-rnn programs do. The last 10%
// of the text is the validation set, read the same way. Every epoch reports the training and
// validation loss in nats and in bits per character, next to a bigram model's validation bits
// per character (counted on the training text with add-one smoothing): the number the LSTM must
// beat. --sample N then streams N characters from the model through an RNNStream.
//
//   char_rnn                             the shipped text (KJV Genesis and Exodus), about 5 minutes
//   char_rnn --text FILE                 any UTF-8 text
//   char_rnn --load m.ckpt --epochs 0 --sample 500 --prime "1:1 "
//   char_rnn --help                      all options
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <new>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "cellflow/cellflow.hpp"
#include "support/args.hpp"
#include "support/output_file.hpp"
#include "support/svg_chart.hpp"

namespace cf = cellflow;
using cf::Index;

namespace {

const char* kUsage = R"(usage: char_rnn [options]

Trains a character language model on a text: an embedding, a stack of BasicLSTMCell layers and a
dense softmax head on every step (tf.contrib.seq2seq.sequence_loss, Adam), by truncated
backpropagation through time over chunks of --steps characters, each of the --batch streams
carrying its state from one chunk into the next. The last 10% of the text is the validation set.
Reports the training and validation loss and bits per character per epoch, and the validation
bits per character of a bigram model for comparison.

  --text FILE          a UTF-8 (or ASCII) text file   [the KJV's Genesis and Exodus in data/kjv]
  --layers N           stacked LSTM layers, 1..16                            [2]
  --units N            units per layer                                       [512]
  --embedding N        embedding size                                        [64]
  --steps N            characters per chunk (truncated BPTT length)          [50]
  --batch N            streams read side by side                             [32]
  --epochs N           passes over the training text (0: no training)        [8]
  --lr X               Adam learning rate, > 0                               [0.002]
  --clip-norm X        clip the gradients to global norm X, > 0              [5]
                       (tf.clip_by_global_norm)
  --dropout KEEP       keep each layer's outputs with probability KEEP in    [1: off]
                       training, in (0, 1] (tf.nn.rnn_cell.DropoutWrapper)
  --seed N             seed of the weights and of the sample                 [42]
  --threads N          threads, each running a slice of the streams          [0: all cores]
  --max-steps N        stop training after N steps in all (a benchmark: the partial epoch is
                       evaluated and reported like a whole one)
  --load FILE          start from a model saved with --save (its sizes and vocabulary; the
                       text's vocabulary must be the same); resume training or, with
                       --epochs 0, evaluate it and sample from it
  --save FILE          save the model, its vocabulary and Adam's state after every epoch
  --csv FILE           write the metrics of every epoch as CSV (after every epoch)
  --plot FILE.svg      chart the loss and bits per character per epoch (at the end)
  --sample N           after training, generate N characters (streamed to stdout)
  --temperature X      divide the logits by X before sampling, > 0            [1]
  --prime TEXT         feed TEXT to the model before sampling (its characters must be in the
                       vocabulary)                                           [a newline]
  --help               this text

Values follow their option (--lr 0.01) or an '=' (--lr=0.01).

The vocabulary is the set of Unicode code points of the text (decoded as UTF-8), sorted; a
bits-per-character figure is per code point. An empty file, or one that is not UTF-8 text (a NUL
or another control byte than tab, newline, carriage return or form feed, an invalid UTF-8
sequence), is refused with a one-line error.

Exit status: 0 done; 1 an error (text, --load file, output file, diverged training); 2 a bad
command line.
)";

struct Options {
  std::string text = CELLFLOW_DEFAULT_TEXT;
  int layers = 2;
  Index units = 512, embedding = 64, steps = 50, batch = 32;
  int epochs = 8;
  float lr = 0.002f;
  bool lr_given = false;
  float clip_norm = 5.0f;
  std::uint64_t seed = 42;
  int threads = 0;
  long long max_steps = 0;
  std::string load, save, csv, plot;
  Index sample = 0;
  float temperature = 1.0f;
  std::string prime;
  bool prime_given = false;
  float dropout = 1;  // output keep probability of every layer in training (1: no dropout)
};

Options parse_options(int argc, char** argv) {
  Options o;
  support::ArgParser args("char_rnn", kUsage);
  args.path("--text", o.text, "a file")
      .integer("--layers", o.layers, 1, 16)
      .integer("--units", o.units, 1, 1 << 14)
      .integer("--embedding", o.embedding, 1, 1 << 14)
      .integer("--steps", o.steps, 1, 1 << 20)
      .integer("--batch", o.batch, 1, 1 << 16)
      .integer("--epochs", o.epochs, 0, 100000)
      .positive("--lr", o.lr)
      .positive("--clip-norm", o.clip_norm)
      .positive("--dropout", o.dropout)
      .integer("--seed", o.seed, 0, 1LL << 62)
      .integer("--threads", o.threads, 0, 1024)
      .integer("--max-steps", o.max_steps, 1, 1LL << 50)
      .path("--load", o.load, "a checkpoint file")
      .path("--save", o.save, "a file")
      .path("--csv", o.csv, "a file")
      .path("--plot", o.plot, "a file")
      .integer("--sample", o.sample, 0, 1LL << 40)
      .positive("--temperature", o.temperature)
      .text("--prime", o.prime);
  args.parse(argc, argv);
  o.prime_given = args.given("--prime");
  o.lr_given = args.given("--lr");
  if (!(o.dropout <= 1)) {
    char v[32];
    std::snprintf(v, sizeof v, "%g", static_cast<double>(o.dropout));
    args.fail(std::string("--dropout expects a keep probability in (0, 1], given ") + v);
  }
  if (o.epochs == 0 && (!o.csv.empty() || !o.plot.empty()))
    args.fail("--csv and --plot record epochs; with --epochs 0 there is none");
  if (o.epochs == 0 && o.load.empty() && o.sample > 0)
    args.fail("--sample with --epochs 0 needs a trained model: --load FILE");
  return o;
}

// ---- the text ----

/// The text as Unicode code points (UTF-8, strictly decoded) and its vocabulary.
struct Text {
  std::vector<char32_t> chars;  // the whole file
  std::vector<char32_t> vocab;  // sorted, distinct
  std::map<char32_t, int> id;   // code point -> index in vocab
};

std::string hex_byte(unsigned char c) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02X", c);
  return buf;
}

/// Decodes `bytes` as UTF-8; an IOError (naming the file, the offset and the byte) for anything
/// that is not text.
std::vector<char32_t> decode_utf8(const std::string& bytes, const std::string& what) {
  std::vector<char32_t> out;
  out.reserve(bytes.size());
  const auto bad = [&](std::size_t at, const std::string& why) {
    return cf::IOError(what + ": not a UTF-8 text file: " + why + " at byte offset " + std::to_string(at));
  };
  for (std::size_t i = 0; i < bytes.size();) {
    const auto c = static_cast<unsigned char>(bytes[i]);
    if (c < 0x80) {
      if (c == 0) throw bad(i, "a NUL byte (a binary file?)");
      if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r' && c != '\f') || c == 0x7F)
        throw bad(i, "the control byte " + hex_byte(c));
      out.push_back(c);
      ++i;
      continue;
    }
    int n = 0;
    char32_t cp = 0;
    if ((c & 0xE0) == 0xC0) {
      n = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3;
      cp = c & 0x07;
    } else {
      throw bad(i, "the byte " + hex_byte(c) + ", which starts no UTF-8 sequence");
    }
    if (i + static_cast<std::size_t>(n) >= bytes.size()) throw bad(i, "a UTF-8 sequence cut short by the end");
    for (int k = 1; k <= n; ++k) {
      const auto d = static_cast<unsigned char>(bytes[i + static_cast<std::size_t>(k)]);
      if ((d & 0xC0) != 0x80) throw bad(i, "an invalid UTF-8 sequence starting with " + hex_byte(c));
      cp = (cp << 6) | (d & 0x3F);
    }
    static const char32_t min_of[4] = {0, 0x80, 0x800, 0x10000};
    if (cp < min_of[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      throw bad(i, "an invalid UTF-8 sequence starting with " + hex_byte(c));
    out.push_back(cp);
    i += static_cast<std::size_t>(n) + 1;
  }
  return out;
}

std::string encode_utf8(char32_t cp) {
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else if (cp < 0x800) {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    s += static_cast<char>(0xE0 | (cp >> 12));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    s += static_cast<char>(0xF0 | (cp >> 18));
    s += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return s;
}

/// A character for a message: 'a', '\n', U+00E9.
std::string show(char32_t cp) {
  if (cp == '\n') return "'\\n'";
  if (cp == '\t') return "'\\t'";
  if (cp == '\r') return "'\\r'";
  return "'" + encode_utf8(cp) + "'";
}

Text read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw cf::IOError("--text '" + path + "': cannot be opened");
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw cf::IOError("--text '" + path + "': read error");
  if (bytes.empty()) throw cf::IOError("--text '" + path + "': the file is empty");
  Text t;
  t.chars = decode_utf8(bytes, "--text '" + path + "'");
  t.vocab = t.chars;
  std::sort(t.vocab.begin(), t.vocab.end());
  t.vocab.erase(std::unique(t.vocab.begin(), t.vocab.end()), t.vocab.end());
  for (std::size_t k = 0; k < t.vocab.size(); ++k) t.id[t.vocab[k]] = static_cast<int>(k);
  return t;
}

/// The vocabulary as checkpoint metadata: its code points in decimal, comma-separated.
std::string vocab_text(const std::vector<char32_t>& vocab) {
  std::string s;
  for (std::size_t k = 0; k < vocab.size(); ++k) s += (k ? "," : "") + std::to_string(vocab[k]);
  return s;
}

// ---- the streams of a text ----

/// ids[b * length + i] is character i of stream b: `streams` contiguous runs of the text.
struct Streams {
  std::vector<int> ids;
  Index streams = 0, length = 0;  // each stream has `length` characters (inputs and the last target)
  /// The chunks of `steps` predictions each stream holds.
  Index chunks(Index steps) const { return (length - 1) / steps; }
};

Streams make_streams(const std::vector<int>& ids, Index streams) {
  Streams s;
  s.streams = streams;
  s.length = static_cast<Index>(ids.size()) / streams;
  s.ids.assign(ids.begin(), ids.begin() + s.streams * s.length);
  return s;
}

/// Chunk k: inputs[b, t] = stream b's character k*steps + t, targets the one after it.
void chunk(const Streams& s, Index k, Index steps, Eigen::MatrixXi& inputs, Eigen::MatrixXi& targets) {
  inputs.resize(s.streams, steps);
  targets.resize(s.streams, steps);
  for (Index b = 0; b < s.streams; ++b)
    for (Index t = 0; t < steps; ++t) {
      const std::size_t at = static_cast<std::size_t>(b * s.length + k * steps + t);
      inputs(b, t) = s.ids[at];
      targets(b, t) = s.ids[at + 1];
    }
}

// ---- the model ----

using Stack = cf::MultiRNNCell<float>;

// MultiRNNCell([DropoutWrapper(BasicLSTMCell(units), output_keep_prob=KEEP, seed=l) for l in
// range(layers)]): --dropout KEEP drops each layer's outputs in training runs only (evaluate() and
// the sample run with training = false and drop nothing); with KEEP = 1 the wrapper is exactly the
// bare cell. The wrapper has no variables, so a checkpoint is the same with or without it.
Stack make_stack(int layers, Index input, Index units, float keep, cf::Rng& rng) {
  std::vector<cf::DropoutWrapper<cf::BasicLSTMCell<float>>> cells;
  for (int l = 0; l < layers; ++l)
    cells.emplace_back(cf::BasicLSTMCell<float>(l == 0 ? input : units, units, rng), /*input_keep_prob=*/1.0,
                       /*output_keep_prob=*/keep, /*state_keep_prob=*/1.0, /*variational_recurrent=*/false,
                       /*seed=*/static_cast<std::uint64_t>(l));
  return Stack(std::move(cells));
}

/// embedding -> stack -> dense, and the list of their variables in TF's order.
struct CharModel {
  cf::Embedding<float> embedding;
  Stack stack;
  cf::Dense<float> head;
  cf::VariableList<float> vars;

  CharModel(Index vocab, const Options& o, cf::Rng& rng)
      : embedding(vocab, o.embedding, rng),
        stack(make_stack(o.layers, o.embedding, o.units, o.dropout, rng)),
        head(o.units, vocab, rng) {
    vars.add(embedding).add(stack, "rnn").add(head);
  }
  CharModel(const CharModel&) = delete;  // vars points into the members
  CharModel& operator=(const CharModel&) = delete;
};

/// One pass over `s` without training: the summed cross-entropy (nats), the predictions made, and
/// the summed cross-entropy of the bigram model on the same (input, target) pairs.
struct Evaluation {
  double loss_sum = 0, bigram_sum = 0;
  long long count = 0;
  double loss() const { return count ? loss_sum / static_cast<double>(count) : 0.0; }
  double bigram() const { return count ? bigram_sum / static_cast<double>(count) : 0.0; }
};

Evaluation evaluate(CharModel& m, const Streams& s, Index steps, int threads, const cf::Matrix<double>& bigram_logp) {
  Evaluation e;
  if (s.length < 2) return e;
  const Index len = std::min<Index>(s.length - 1, std::max<Index>(steps, 200));  // chunk length
  cf::RNNOptions opts;
  opts.training = false;
  opts.batch_threads = std::min<int>(threads, static_cast<int>(s.streams));
  auto state = m.stack.zero_state(s.streams);
  cf::SequenceLossOptions per_step;  // the [batch, time] cross-entropies, summed here
  per_step.average_across_batch = per_step.average_across_timesteps = false;
  Eigen::MatrixXi inputs, targets;
  cf::RNNResult<Stack> rnn;
  for (Index start = 0; start + 1 < s.length; start += len) {
    const Index n = std::min(len, s.length - 1 - start);
    inputs.resize(s.streams, n);
    targets.resize(s.streams, n);
    for (Index b = 0; b < s.streams; ++b)
      for (Index t = 0; t < n; ++t) {
        inputs(b, t) = s.ids[static_cast<std::size_t>(b * s.length + start + t)];
        targets(b, t) = s.ids[static_cast<std::size_t>(b * s.length + start + t + 1)];
      }
    cf::dynamic_rnn_into(rnn, m.stack, m.embedding(inputs), opts, &state);
    state = rnn.final_state;
    const auto xent = cf::sequence_loss(m.head(rnn.outputs), targets, cf::Matrix<float>::Ones(s.streams, n), per_step);
    for (Index b = 0; b < s.streams; ++b)
      for (Index t = 0; t < n; ++t) {
        e.loss_sum += xent.loss(b, t);
        e.bigram_sum -= bigram_logp(inputs(b, t), targets(b, t));
      }
    e.count += static_cast<long long>(s.streams * n);
  }
  return e;
}

/// log P(next | previous) of the bigram model counted on `ids` with add-one smoothing.
cf::Matrix<double> bigram_model(const std::vector<int>& ids, Index vocab) {
  cf::Matrix<double> counts = cf::Matrix<double>::Ones(vocab, vocab);
  for (std::size_t i = 0; i + 1 < ids.size(); ++i) counts(ids[i], ids[i + 1]) += 1;
  for (Index r = 0; r < vocab; ++r) {
    const double total = counts.row(r).sum();
    for (Index c = 0; c < vocab; ++c) counts(r, c) = std::log(counts(r, c) / total);
  }
  return counts;
}

/// The progress bar of cf::fit (cf::ProgressBar) driven by this program's own loop: the bar asks
/// its context only whether it prints (the bar's "samples" are characters here).
struct LoopContext : cf::FitContext {
  cf::FitOptions opts;
  const cf::FitOptions& options() const override { return opts; }
  Index train_size() const override { return 0; }
  Index batches_per_epoch() const override { return 0; }
  bool has_validation() const override { return true; }
  double learning_rate() const override { return 0; }
  void set_learning_rate(double) override {}
  void save(const std::string&, bool, const cf::io::CheckpointMetadata&) const override {}
  std::vector<double> weights() const override { return {}; }
  void set_weights(const std::vector<double>&) override {}
  std::string model_summary() const override { return "char_rnn"; }
};

struct EpochRow {
  int epoch;
  double loss, val_loss, bigram_val, seconds, chars_per_second;
  long long steps;
};

constexpr double kLn2 = 0.69314718055994530942;

std::string csv_text(const std::vector<EpochRow>& rows, double lr) {
  std::ostringstream os;
  os.precision(9);
  os << "epoch,loss,bpc,val_loss,val_bpc,bigram_val_bpc,learning_rate,steps,seconds,chars_per_second\n";
  for (const auto& r : rows)
    os << r.epoch << "," << r.loss << "," << r.loss / kLn2 << "," << r.val_loss << "," << r.val_loss / kLn2 << ","
       << r.bigram_val / kLn2 << "," << lr << "," << r.steps << "," << r.seconds << "," << r.chars_per_second << "\n";
  return os.str();
}

std::string chart_text(const Options& o, const std::vector<EpochRow>& rows, Index vocab, Index chars) {
  const long long first = rows.front().epoch;
  support::Series loss{"training bits per character", "#d62728", {}, false, first};
  support::Series val{"validation bits per character", "#1f77b4", {}, false, first};
  for (const auto& r : rows) {
    loss.values.push_back(r.loss / kLn2);
    val.values.push_back(r.val_loss / kLn2);
  }
  std::ostringstream caption;
  caption << "char_rnn: embedding(" << o.embedding << ") + " << o.layers << " x basic_lstm(" << o.units << ") + dense("
          << vocab << "), " << chars << " characters, batch " << o.batch << " x " << o.steps << " steps, Adam(" << o.lr
          << "); bigram baseline " << rows.back().bigram_val / kLn2 << " bpc";
  return support::svg_chart(caption.str(), {loss, val});
}

/// Reads --load's sizes into `o` and returns its vocabulary; a ValueError for a file that is not a
/// char_rnn model.
std::vector<char32_t> loaded_model(const cf::io::CheckpointInfo& info, const std::string& path, Options& o) {
  const auto& md = info.metadata;
  const auto get = [&](const char* key) {
    const auto it = md.find(key);
    if (it == md.end() || md.count("model") == 0 || md.at("model") != "char_rnn")
      throw cf::ValueError("--load '" + path + "' is not a char_rnn model (no '" + key + "' in its metadata)");
    return it->second;
  };
  try {
    std::vector<char32_t> vocab;
    std::stringstream ss(get("vocab"));
    for (std::string item; std::getline(ss, item, ',');) vocab.push_back(static_cast<char32_t>(std::stoul(item)));
    o.layers = std::stoi(get("layers"));
    o.units = std::stol(get("units"));
    o.embedding = std::stol(get("embedding"));
    if (vocab.empty() || !std::is_sorted(vocab.begin(), vocab.end()) || o.layers < 1 || o.units < 1 || o.embedding < 1)
      throw std::invalid_argument("out of range");
    return vocab;
  } catch (const std::logic_error&) {  // std::stoi's invalid_argument and out_of_range
    throw cf::ValueError("--load '" + path + "': its char_rnn metadata (vocab, layers, units, embedding) is malformed");
  }
}

int run(const Options& given, int argc, char** argv) {
  Options o = given;
  // Outputs first: a run that cannot write its results fails before any work.
  if (!o.save.empty()) support::check_output_file(o.save, "--save");
  if (!o.csv.empty()) support::check_output_file(o.csv, "--csv");
  if (!o.plot.empty()) support::check_output_file(o.plot, "--plot");

  cf::io::CheckpointInfo info;
  std::vector<char32_t> file_vocab;
  if (!o.load.empty()) {
    try {
      info = cf::io::read_checkpoint_info(o.load);
    } catch (const cf::IOError& e) {
      throw cf::IOError(std::string("--load: ") + e.what());
    }
    file_vocab = loaded_model(info, o.load, o);
    // Sizes given on the command line must be the file's.
    std::string diff;
    const auto differs = [&](const char* opt, long long file, long long mine) {
      for (int i = 1; i < argc; ++i)
        if (std::string(argv[i]) == opt || std::string(argv[i]).rfind(std::string(opt) + "=", 0) == 0)
          if (file != mine)
            diff += std::string(diff.empty() ? "" : "; ") + opt + ": the file has " + std::to_string(file) +
                    ", this run " + std::to_string(mine);
    };
    differs("--layers", o.layers, given.layers);
    differs("--units", o.units, given.units);
    differs("--embedding", o.embedding, given.embedding);
    if (!diff.empty()) throw cf::ValueError("--load '" + o.load + "' holds another model (" + diff + ")");
  }

  const Text text = read_text(o.text);
  const Index V = static_cast<Index>(text.vocab.size());
  if (!o.load.empty() && file_vocab != text.vocab) {
    std::string missing;
    for (char32_t c : text.vocab)
      if (!std::binary_search(file_vocab.begin(), file_vocab.end(), c)) {
        missing = ", e.g. " + show(c) + " is not in the model's";
        break;
      }
    throw cf::ValueError("--load '" + o.load + "': the model's vocabulary (" + std::to_string(file_vocab.size()) +
                         " characters) is not that of --text '" + o.text + "' (" + std::to_string(V) + " characters" +
                         missing + "); pass the text it was trained on");
  }
  std::vector<char32_t> prime;
  if (o.sample > 0) {
    const std::vector<char32_t> p = decode_utf8(o.prime_given ? o.prime : std::string("\n"), "--prime");
    for (char32_t c : p)
      if (text.id.count(c) == 0)
        throw cf::ValueError("--prime: the character " + show(c) + " is not in the vocabulary of '" + o.text + "'");
    prime = p;
    if (prime.empty()) prime.push_back(text.id.count('\n') ? '\n' : text.vocab[0]);
  }

  std::vector<int> ids(text.chars.size());
  for (std::size_t k = 0; k < ids.size(); ++k) ids[k] = text.id.at(text.chars[k]);
  const std::size_t split = ids.size() - ids.size() / 10;
  const std::vector<int> train_ids(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(split));
  const std::vector<int> val_ids(ids.begin() + static_cast<std::ptrdiff_t>(split), ids.end());
  if (val_ids.size() < 2)
    throw cf::ValueError("--text '" + o.text + "': " + std::to_string(ids.size()) +
                         " characters are too few (its last 10% are the validation set, which needs 2 at least)");
  const Index need = o.batch * o.steps + 1;
  if (o.epochs > 0 && static_cast<Index>(train_ids.size()) < need)
    throw cf::ValueError("--text '" + o.text + "': its training part (the first 90%) has " +
                         std::to_string(train_ids.size()) + " characters; --batch " + std::to_string(o.batch) +
                         " x --steps " + std::to_string(o.steps) + " needs at least " + std::to_string(need));
  const Streams train = make_streams(train_ids, o.batch);
  const Index val_streams = std::max<Index>(1, std::min<Index>(o.batch, static_cast<Index>(val_ids.size()) / 2));
  const Streams val = make_streams(val_ids, val_streams);
  const cf::Matrix<double> bigram = bigram_model(train_ids, V);

  int threads = o.threads > 0 ? o.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
#ifdef _OPENMP
  Eigen::setNbThreads(threads);
#else
  threads = 1;
#endif

  cf::Rng rng(o.seed);
  CharModel m(V, o, rng);
  cf::AdamOptimizer<float> adam(o.lr);
  int epochs_before = 0;
  long long steps_before = 0;
  if (!o.load.empty()) {
    const bool resume = info.optimizer == adam.kind();
    cf::io::load_checkpoint(o.load, m.vars, resume ? &adam : nullptr);
    if (o.lr_given) adam.set_learning_rate(o.lr);
    epochs_before = cf::epochs_trained(info);
    steps_before = info.optimizer_step;
    std::printf("loaded %s: trained for %d epoch%s, %lld Adam steps\n", o.load.c_str(), epochs_before,
                epochs_before == 1 ? "" : "s", steps_before);
  }
  char dropout_text[40] = "";
  if (o.dropout < 1) std::snprintf(dropout_text, sizeof dropout_text, ", dropout %g", static_cast<double>(o.dropout));
  std::printf(
      "char_rnn: embedding(%ld) + %d x basic_lstm(%ld) + dense(%ld), %ld parameters; %s: %zu characters (%zu "
      "train, %zu validation), vocabulary %ld; batch %ld x %ld steps, Adam(%g), clip_norm %g%s, %d thread%s\n",
      static_cast<long>(o.embedding), o.layers, static_cast<long>(o.units), static_cast<long>(V),
      static_cast<long>(m.vars.num_scalars()), o.text.c_str(), ids.size(), train_ids.size(), val_ids.size(),
      static_cast<long>(V), static_cast<long>(o.batch), static_cast<long>(o.steps),
      static_cast<double>(adam.learning_rate()), static_cast<double>(o.clip_norm), dropout_text, threads,
      threads == 1 ? "" : "s");
  std::fflush(stdout);

  const auto save = [&](int epochs_done) {
    cf::io::CheckpointMetadata md{{"model", "char_rnn"},
                                  {"vocab", vocab_text(text.vocab)},
                                  {"layers", std::to_string(o.layers)},
                                  {"units", std::to_string(o.units)},
                                  {"embedding", std::to_string(o.embedding)},
                                  {"epochs", std::to_string(epochs_done)}};
    cf::io::save_checkpoint(o.save, m.vars, &adam, md);
  };

  // ---- training ----
  std::vector<EpochRow> rows;
  cf::ProgressBar bar(stdout, /*epoch_summary=*/false);
  LoopContext ctx;
  cf::RNNOptions train_opts;
  train_opts.batch_threads = std::min<int>(threads, static_cast<int>(o.batch));
  const Index chunks = train.chunks(o.steps);
  const cf::Matrix<float> weights = cf::Matrix<float>::Ones(o.batch, o.steps);
  Eigen::MatrixXi inputs, targets;
  cf::RNNResult<Stack> rnn;
  long long step = steps_before;
  bool stop = false;
  const auto t_start = std::chrono::steady_clock::now();
  for (int e = 1; e <= o.epochs && !stop; ++e) {
    const int epoch = epochs_before + e;
    auto state = m.stack.zero_state(o.batch);  // each epoch starts the streams afresh
    double loss_sum = 0;
    Index done = 0;
    const auto t0 = std::chrono::steady_clock::now();
    for (Index k = 0; k < chunks; ++k) {
      chunk(train, k, o.steps, inputs, targets);
      m.vars.zero_grad();
      const cf::Tensor3<float> x = m.embedding(inputs);
      train_opts.draw = static_cast<std::uint64_t>(step);  // --dropout's masks: by the global step (resumable)
      cf::dynamic_rnn_into(rnn, m.stack, x, train_opts, &state);
      const auto xent = cf::sequence_loss(m.head(rnn.outputs), targets, weights);
      const cf::Tensor3<float> d_outputs = m.head.backward(rnn.outputs, xent.gradient());
      const auto g = cf::dynamic_rnn_backward(m.stack, rnn, &d_outputs);
      m.embedding.backward(inputs, g.d_inputs);
      ++step;
      cf::check_finite_loss(xent.value(), step);
      cf::check_finite_gradients(m.vars, step);
      cf::clip_by_global_norm(m.vars, o.clip_norm);
      adam.apply_gradients(m.vars);
      state = rnn.final_state;  // the next chunk goes on from here (truncated BPTT)
      loss_sum += xent.value();
      ++done;
      cf::BatchLogs b;
      b.epoch = epoch;
      b.epochs = epochs_before + o.epochs;
      b.batch = k + 1;
      b.batches = chunks;
      b.examples = (k + 1) * o.batch * o.steps;
      b.epoch_examples = chunks * o.batch * o.steps;
      b.loss = xent.value();
      b.mean_loss = loss_sum / static_cast<double>(done);
      b.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      bar.on_batch_end(ctx, b);
      if (o.max_steps > 0 && step - steps_before >= o.max_steps) {
        stop = true;
        break;
      }
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    cf::EpochLogs logs;
    bar.on_epoch_end(ctx, logs);  // erases the bar
    const Evaluation v = evaluate(m, val, o.steps, threads, bigram);
    const EpochRow row{epoch,   loss_sum / static_cast<double>(std::max<Index>(1, done)), v.loss(), v.bigram(),
                       seconds, static_cast<double>(done * o.batch * o.steps) / seconds,  step};
    rows.push_back(row);
    std::printf(
        "epoch %d/%d: loss %.4f (%.3f bpc), val_loss %.4f (%.3f bpc; bigram %.3f bpc)  %lld steps, %.1f s, %.0f "
        "chars/s\n",
        epoch, epochs_before + o.epochs, row.loss, row.loss / kLn2, row.val_loss, row.val_loss / kLn2,
        row.bigram_val / kLn2, static_cast<long long>(done), seconds, row.chars_per_second);
    std::fflush(stdout);
    if (!o.save.empty()) save(epoch);
    if (!o.csv.empty()) support::write_output_file(o.csv, csv_text(rows, adam.learning_rate()), "--csv");
  }
  const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  if (o.epochs > 0) {
    double chars = 0, secs = 0;
    for (const auto& r : rows) {
      secs += r.seconds;
      chars += r.chars_per_second * r.seconds;
    }
    const EpochRow& last = rows.back();
    std::printf(
        "done: validation %.3f bpc (loss %.4f) against the bigram model's %.3f bpc; %lld steps in %.1f s, "
        "training %.0f chars/s\n",
        last.val_loss / kLn2, last.val_loss, last.bigram_val / kLn2, step - steps_before, total,
        secs > 0 ? chars / secs : 0.0);
  } else {
    const Evaluation v = evaluate(m, val, o.steps, threads, bigram);
    std::printf("validation %.3f bpc (loss %.4f) against the bigram model's %.3f bpc\n", v.loss() / kLn2, v.loss(),
                v.bigram() / kLn2);
  }
  if (!o.save.empty()) {
    if (o.epochs == 0) save(epochs_before);
    std::printf("model saved to %s\n", o.save.c_str());
  }
  if (!o.plot.empty() && !rows.empty()) {
    support::write_output_file(o.plot, chart_text(o, rows, V, static_cast<Index>(ids.size())), "--plot");
    std::printf("chart written to %s\n", o.plot.c_str());
  }

  // ---- sampling: one stream, one character at a time ----
  if (o.sample > 0) {
    cf::Rng sample_rng(o.seed);
    cf::RNNStream<Stack> stream(m.stack, 1);
    cf::Matrix<float> logits;
    std::string out;
    for (char32_t c : prime) out += encode_utf8(c);
    std::printf("sample (temperature %g):\n%s", static_cast<double>(o.temperature), out.c_str());
    int next = 0;
    for (std::size_t k = 0; k < prime.size(); ++k)
      m.head.forward_into(stream.step(m.embedding(std::vector<int>{text.id.at(prime[k])})), logits);
    for (Index n = 0; n < o.sample; ++n) {
      const cf::Matrix<float> p = cf::softmax(cf::Matrix<float>(logits / o.temperature));
      double u = sample_rng.uniform01<double>(), acc = 0;
      next = static_cast<int>(V - 1);
      for (Index c = 0; c < V; ++c) {
        acc += p(0, c);
        if (u < acc) {
          next = static_cast<int>(c);
          break;
        }
      }
      std::fputs(encode_utf8(text.vocab[static_cast<std::size_t>(next)]).c_str(), stdout);
      m.head.forward_into(stream.step(m.embedding(std::vector<int>{next})), logits);
    }
    std::printf("\n");
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse_options(argc, argv);
  try {
    return run(o, argc, argv);
  } catch (const cf::Error& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "char_rnn: error: %s\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "char_rnn: error: out of memory\n");
    return 1;
  }
}
