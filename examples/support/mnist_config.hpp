// The models mnist_rnn builds, as cellflow::ModelConfig, and the architecture of its checkpoints:
//
//   --cell basic|peephole|gru --layers N --units U   ->   N x BasicLSTM(U) | LSTM(U, peepholes) | GRU(U)
//   --dropout KEEP                                   ->   each layer with_dropout(layer, KEEP)
//
// over rows of 28 pixels (the data's width), a dense head with 10 classes. A checkpoint written
// by Model::save (mnist_rnn --save today) holds its architecture (metadata "cellflow.model"); one
// written by an older mnist_rnn holds it as the metadata model=mnist_rnn, cell, layers, units,
// inputs and classes, and its variables have the same names, so it loads into the model those
// describe (Model::load_weights).
#pragma once

#include <cstdio>
#include <set>
#include <string>
#include <vector>

#include "cellflow/cellflow.hpp"

namespace support {

/// The stack of --cell (basic, peephole, gru), --layers and --units over rows of `inputs`
/// pixels, with a dense head of `classes` outputs; `bidirectional` (--bidirectional): every
/// layer a forward and a backward cell, the head on both directions' final h; --dropout KEEP < 1
/// wraps every layer in a DropoutWrapper(output_keep_prob = KEEP).
inline cellflow::ModelConfig mnist_config(const std::string& cell, int layers, cellflow::Index units,
                                          cellflow::Index inputs = 28, cellflow::Index classes = 10,
                                          bool bidirectional = false, double keep = 1.0) {
  cellflow::CellConfig layer;
  if (cell == "basic") {
    layer = cellflow::BasicLSTM(units);
  } else if (cell == "peephole") {
    cellflow::LSTMOptions<double> peepholes;
    peepholes.use_peepholes = true;
    layer = cellflow::LSTM(units, peepholes);
  } else if (cell == "gru") {
    layer = cellflow::GRU(units);
  } else {
    throw cellflow::ValueError("--cell must be basic, peephole or gru, given '" + cell + "'");
  }
  if (keep != 1.0) layer = cellflow::with_dropout(layer, keep);
  std::vector<cellflow::CellConfig> cells(static_cast<std::size_t>(layers), layer);
  if (bidirectional) return cellflow::bidirectional_classifier(inputs, std::move(cells), classes);
  return cellflow::classifier(inputs, std::move(cells), classes);
}

/// Whether `info` is a file of Model::save (it holds its architecture).
inline bool has_architecture(const cellflow::io::CheckpointInfo& info) {
  return info.metadata.count(cellflow::Model<float>::kArchitectureKey) != 0;
}

/// The architecture of the checkpoint `path` described by `info`: Model::save's, or an older
/// mnist_rnn's metadata. ValueError naming the file when it holds neither.
inline cellflow::ModelConfig checkpoint_config(const cellflow::io::CheckpointInfo& info, const std::string& path) {
  if (has_architecture(info))
    return cellflow::model_config_from_text(info.metadata.at(cellflow::Model<float>::kArchitectureKey),
                                            "checkpoint '" + path + "'");
  const auto get = [&](const char* key) -> std::string {
    const auto it = info.metadata.find(key);
    if (it == info.metadata.end())
      throw cellflow::ValueError("checkpoint '" + path + "' holds no architecture (no '" + key +
                                 "' entry in its metadata): it was not written by mnist_rnn --save or Model::save");
    return it->second;
  };
  const auto get_int = [&](const char* key, long long lo, long long hi) {
    const std::string v = get(key);
    std::size_t used = 0;
    long long x = 0;
    try {
      x = std::stoll(v, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != v.size() || x < lo || x > hi)
      throw cellflow::ValueError("checkpoint '" + path + "': metadata '" + key + "' is '" + v +
                                 "', expected an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    return x;
  };
  if (get("model") != "mnist_rnn")
    throw cellflow::ValueError("checkpoint '" + path + "' holds a '" + get("model") + "' model, not an mnist_rnn one");
  const std::string cell = get("cell");
  if (cell != "basic" && cell != "peephole" && cell != "gru")
    throw cellflow::ValueError("checkpoint '" + path + "': metadata 'cell' is '" + cell +
                               "', expected basic, peephole or gru");
  return mnist_config(cell, static_cast<int>(get_int("layers", 1, 64)), get_int("units", 1, 1 << 16),
                      get_int("inputs", 1, 1 << 16), get_int("classes", 2, 1 << 16));
}

/// Whether `option` belongs to a layer's DropoutWrapper (cellflow::with_dropout), not its cell.
inline bool dropout_option(const std::string& option) {
  for (const char* d :
       {"input_keep_prob", "output_keep_prob", "state_keep_prob", "variational_recurrent", "dropout_seed"})
    if (option == d) return true;
  return false;
}

/// A layer's --dropout: its output keep probability (1: none).
inline double keep_of(const cellflow::CellConfig& c) { return c.get("output_keep_prob", 1.0); }

/// A layer's options as text, without its dropout's: ", cell_clip=3, forget_bias=1".
inline std::string option_text(const cellflow::CellConfig& c) {
  std::string s;
  for (const auto& [name, value] : c.options) {
    if (dropout_option(name)) continue;
    char v[32];
    std::snprintf(v, sizeof v, "%g", value);
    s += ", " + name + "=" + v;
  }
  return s;
}

/// --cell's name of a layer mnist_rnn builds ("basic", "peephole", "gru"); empty for another.
inline std::string flag_name(const cellflow::CellConfig& c) {
  for (const char* name : {"basic", "peephole", "gru"}) {
    const cellflow::CellConfig ours = mnist_config(name, 1, c.num_units).cells[0];
    auto options = c.options;  // the cell's own, without its dropout's
    for (auto it = options.begin(); it != options.end();) it = dropout_option(it->first) ? options.erase(it) : ++it;
    if (c.kind == ours.kind && options == ours.options) return name;
  }
  return "";
}

/// --cell's name of a layer, or its TF class and options ("LSTMCell(cell_clip=3, forget_bias=1)").
inline std::string cell_name(const cellflow::CellConfig& c) {
  const std::string name = flag_name(c), options = option_text(c);
  return !name.empty() ? name : c.kind + "(" + (options.empty() ? "" : options.substr(2)) + ")";
}

/// A layer as "basic(150)", "gru(64, dropout 0.8)", or "LSTMCell(150, cell_clip=3, forget_bias=1)"
/// for one mnist_rnn does not build.
inline std::string layer_text(const cellflow::CellConfig& c) {
  const std::string name = flag_name(c), units = std::to_string(c.num_units);
  std::string dropout;
  if (keep_of(c) != 1.0) {
    char v[32];
    std::snprintf(v, sizeof v, "%g", keep_of(c));
    dropout = std::string(", dropout ") + v;
  }
  return !name.empty() ? name + "(" + units + dropout + ")" : c.kind + "(" + units + option_text(c) + dropout + ")";
}

/// "3 x basic(150)", or each layer for a stack of different ones ("gru(64), basic(32)").
inline std::string describe(const cellflow::ModelConfig& c) {
  std::vector<std::string> layers;
  for (const auto& layer : c.cells) layers.push_back(layer_text(layer));
  const std::string bi = c.bidirectional ? "bidirectional " : "";
  if (std::set<std::string>(layers.begin(), layers.end()).size() == 1)
    return std::to_string(layers.size()) + " x " + bi + layers.front();
  std::string d;
  for (const auto& l : layers) d += (d.empty() ? "" : ", ") + l;
  return bi + d;
}

/// What differs between the model in a file and the one a run asks for, in the terms of
/// --cell, --layers, --units and --dropout (a stack of different layers: each layer's kind or size,
/// comma-separated), e.g. "--cell: the file has gru, this run basic; --units: the file has 64,
/// this run 150"; empty when they are the same.
inline std::string differences(const cellflow::ModelConfig& file, const cellflow::ModelConfig& run) {
  const auto options = [](const cellflow::ModelConfig& c) {
    std::vector<std::string> cells, units, keeps;
    for (const auto& layer : c.cells) {
      cells.push_back(cell_name(layer));
      units.push_back(std::to_string(layer.num_units));
      char v[32];
      std::snprintf(v, sizeof v, "%g", keep_of(layer));
      keeps.push_back(v);
    }
    const auto list = [](const std::vector<std::string>& v) {
      if (std::set<std::string>(v.begin(), v.end()).size() == 1) return v.front();
      std::string s;
      for (const auto& x : v) s += (s.empty() ? "" : ",") + x;
      return s;
    };
    return std::vector<std::string>{list(cells),
                                    std::to_string(c.cells.size()),
                                    list(units),
                                    c.bidirectional ? "on" : "off",
                                    list(keeps),
                                    std::to_string(c.input_depth),
                                    std::to_string(c.classes)};
  };
  const char* what[] = {"--cell", "--layers", "--units", "--bidirectional", "--dropout", "pixels per row (the data)",
                        "classes"};
  const std::vector<std::string> f = options(file), r = options(run);
  std::string d;
  for (std::size_t k = 0; k < f.size(); ++k)
    if (f[k] != r[k])
      d += (d.empty() ? "" : "; ") + std::string(what[k]) + ": the file has " + f[k] + ", this run " + r[k];
  if (d.empty())  // what the options do not set (variable scopes, the loss): the library's list
    for (const auto& line : cellflow::differences(file, run, "the file", "this run"))
      d += (d.empty() ? "" : "; ") + line;
  return d;
}

}  // namespace support
