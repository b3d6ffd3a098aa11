// A model's architecture as data (model/architecture.hpp): the layer helpers (BasicLSTM, LSTM,
// GRU, CudnnCompatibleGRU), make_cell, ModelConfig::validate, the architecture text (to_text and
// model_config_from_text: the exact text, round trips of every kind and option with exact
// doubles, an error naming the line for every malformed line) and differences().
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "support/temp_dir.hpp"
#include "support/test_util.hpp"

namespace test_architecture {

using namespace cellflow_test;
using Catch::Matchers::Contains;

std::string validate_error(cf::ModelConfig c) {
  return message_of<cf::ValueError>([&] { c.validate(); });
}

cf::LSTMOptions<double> full_options() {
  cf::LSTMOptions<double> o;
  o.use_peepholes = true;
  o.cell_clip = 0.1;
  o.num_proj = 3;
  o.proj_clip = 0.7;
  o.forget_bias = 0.5;
  return o;
}

/// Every kind, every LSTMCell option, values that are not short in binary.
cf::ModelConfig every_kind() {
  cf::ModelConfig c = cf::classifier(
      3, {cf::BasicLSTM(4, 0.5), cf::LSTM(5, full_options()), cf::GRU(6), cf::CudnnCompatibleGRU(2), cf::LSTM(4)}, 4);
  c.scope = "encoder";
  c.head_name = "logits";
  return c;
}

TEST_CASE("the layer helpers describe TF's classes", "[architecture]") {
  const cf::CellConfig b = cf::BasicLSTM(150);
  CHECK(b.kind == "BasicLSTMCell");
  CHECK(b.num_units == 150);
  CHECK(b.output_size == 150);
  CHECK(b.options == std::map<std::string, double>{{"forget_bias", 1.0}});
  const cf::CellConfig l = cf::LSTM(8, full_options());
  CHECK(l.kind == "LSTMCell");
  CHECK(l.output_size == 3);
  CHECK(l.options ==
        std::map<std::string, double>{
            {"forget_bias", 0.5}, {"use_peepholes", 1}, {"cell_clip", 0.1}, {"num_proj", 3}, {"proj_clip", 0.7}});
  CHECK(cf::LSTM(8).options == std::map<std::string, double>{{"forget_bias", 1.0}});
  CHECK(cf::GRU(6).kind == "GRUCell");
  CHECK(cf::GRU(6).options.empty());
  CHECK(cf::CudnnCompatibleGRU(6).kind == "CudnnCompatibleGRUCell");
  CHECK(cf::LayerNormBasicLSTM(6).kind == "LayerNormBasicLSTMCell");
  CHECK(cf::LayerNormBasicLSTM(6).options == std::map<std::string, double>{{"forget_bias", 1.0},
                                                                           {"layer_norm", 1},
                                                                           {"norm_gain", 1.0},
                                                                           {"norm_shift", 0.0},
                                                                           {"dropout_keep_prob", 1.0}});
  CHECK(cf::known_cell_kinds() == std::vector<std::string>{"BasicLSTMCell", "LSTMCell", "GRUCell",
                                                           "CudnnCompatibleGRUCell", "LayerNormBasicLSTMCell",
                                                           "BasicRNNCell"});
}

TEST_CASE("make_cell builds the cell a hand-written program builds, from the same Rng", "[architecture]") {
  cf::LSTMOptions<float> of;
  of.use_peepholes = true;
  of.cell_clip = 0.1f;
  of.num_proj = 3;
  of.proj_clip = 0.7f;
  of.forget_bias = 0.5f;
  cf::Rng r1(4), r2(4);
  cf::AnyCell<float> made = cf::make_cell<float>(cf::LSTM(5, full_options()), 2, r1);
  cf::LSTMCell<float> hand(2, 5, of, r2);
  CHECK(made.input_depth() == 2);
  CHECK(made.output_size() == 3);
  cf::VariableList<float> a, b;
  a.add(made);
  b.add(hand);
  REQUIRE(a.size() == b.size());
  for (std::size_t k = 0; k < a.size(); ++k) {
    CHECK(a[k].name == b[k].name);
    CHECK(bitwise_equal(*a[k].value, *b[k].value));
  }
  // Same computation too (the options reached the cell).
  const auto x = random_tensor<float>(2, 3, 2, r1);
  cf::RNNOptions ro;
  ro.training = false;
  CHECK(bitwise_equal(cf::dynamic_rnn(made, x, ro).outputs, cf::dynamic_rnn(hand, x, ro).outputs));
  const cf::CellConfig back = made.config();
  CHECK(back.kind == "LSTMCell");
  CHECK(back.num_units == 5);
  CHECK(back.output_size == 3);

  cf::Rng r3(8), r4(8);
  cf::AnyCell<double> gru = cf::make_cell<double>(cf::CudnnCompatibleGRU(4), 3, r3);
  cf::CudnnCompatibleGRUCell<double> gru_hand(3, 4, r4);
  cf::VariableList<double> c, d;
  c.add(gru);
  d.add(gru_hand);
  REQUIRE(c.size() == d.size());
  for (std::size_t k = 0; k < c.size(); ++k) CHECK(bitwise_equal(*c[k].value, *d[k].value));

  cf::Rng r5(1);
  CHECK_THAT(message_of<cf::ValueError>([&] { cf::make_cell<float>(cf::GRU(4), 0, r5); }),
             Contains("input_depth must be positive, given 0"));
  cf::CellConfig fancy = cf::GRU(4);
  fancy.kind = "FancyCell";
  CHECK_THAT(message_of<cf::ValueError>([&] { cf::make_cell<float>(fancy, 3, r5); }),
             Contains("make_cell: unknown cell kind 'FancyCell'") && Contains("GRUCell"));
}

TEST_CASE("ModelConfig::validate fills in the depths and names every problem", "[architecture][errors]") {
  cf::ModelConfig ok = cf::classifier(3, {cf::LSTM(5, full_options()), cf::GRU(6)}, 4);
  CHECK(ok.cells[0].input_depth == 3);
  CHECK(ok.cells[0].output_size == 3);  // num_proj
  CHECK(ok.cells[1].input_depth == 3);
  CHECK(ok.cells[1].output_size == 6);
  CHECK(ok.rnn_output_size() == 6);

  cf::ModelConfig c = ok;
  c.cells.clear();
  CHECK_THAT(validate_error(c), Contains("needs at least one recurrent layer (cells is empty)"));
  c = ok;
  c.classes = 0;
  CHECK_THAT(validate_error(c), Contains("classes must be in [1, 2^24], given 0"));
  c = ok;
  c.input_depth = -2;
  CHECK_THAT(validate_error(c), Contains("input_depth must be in [1, 2^24], given -2"));
  c = ok;
  c.multi_rnn_cell = false;
  CHECK_THAT(validate_error(c), Contains("multi_rnn_cell = false") && Contains("2 layers"));
  c = ok;
  c.cells[1].kind = "FancyCell";
  CHECK_THAT(validate_error(c), Contains("layer 1") && Contains("unknown cell kind 'FancyCell'"));
  c = ok;
  c.cells[1].options["forget_bias"] = 1;
  CHECK_THAT(validate_error(c),
             Contains("layer 1") && Contains("GRUCell has no option 'forget_bias' (it takes activation)"));
  c = ok;
  c.cells[0].options["peepholes"] = 1;
  CHECK_THAT(validate_error(c),
             Contains("layer 0") && Contains("LSTMCell has no option 'peepholes'") &&
                 Contains("it takes forget_bias, use_peepholes, cell_clip, num_proj, proj_clip, activation"));
  c = ok;
  c.cells[0].options.erase("num_proj");
  CHECK_THAT(validate_error(c), Contains("layer 0") && Contains("proj_clip needs num_proj"));
  c = ok;
  c.cells[0].options["num_proj"] = 2.5;
  CHECK_THAT(validate_error(c), Contains("num_proj must be an integer"));
  c = ok;
  c.cells[0].options["cell_clip"] = 0;
  CHECK_THAT(validate_error(c), Contains("cell_clip must be > 0, given 0"));
  c = ok;
  c.cells[0].options["use_peepholes"] = 2;
  CHECK_THAT(validate_error(c), Contains("use_peepholes must be 0 or 1"));
  c = ok;
  c.cells[0].options["forget_bias"] = std::numeric_limits<double>::quiet_NaN();
  CHECK_THAT(validate_error(c), Contains("option forget_bias is nan"));
  c = ok;
  c.cells[1].num_units = 0;
  CHECK_THAT(validate_error(c), Contains("layer 1") && Contains("GRUCell num_units must be in [1, 2^24], given 0"));
  c = ok;
  c.loss = "mse";
  CHECK_THAT(validate_error(c), Contains("unknown loss 'mse'"));
  c = ok;
  c.head_name.clear();
  CHECK_THAT(validate_error(c), Contains("head_name is empty"));
  // One layer without a MultiRNNCell is fine.
  cf::ModelConfig single = cf::classifier(3, {cf::GRU(4)}, 2);
  single.multi_rnn_cell = false;
  CHECK_NOTHROW(single.validate());
  // classifier() validates.
  CHECK_THAT(message_of<cf::ValueError>([] { cf::classifier(3, {}, 2); }), Contains("cells is empty"));
  cf::LSTMOptions<double> clip_only;
  clip_only.proj_clip = 1.0;
  CHECK_THAT(message_of<cf::ValueError>([&] { cf::classifier(3, {cf::LSTM(4, clip_only)}, 2); }),
             Contains("proj_clip needs num_proj"));
}

TEST_CASE("to_text writes the documented architecture text", "[architecture]") {
  CHECK(cf::to_text(cf::classifier(28, {cf::BasicLSTM(150)}, 10)) ==
        "cellflow-model 1\n"
        "input_depth 28\n"
        "rnn scope=rnn multi_rnn_cell=1\n"
        "cell BasicLSTMCell num_units=150 forget_bias=1\n"
        "head dense name=dense classes=10\n"
        "loss sparse_softmax_cross_entropy\n");
  CHECK(cf::to_text(every_kind()) ==
        "cellflow-model 1\n"
        "input_depth 3\n"
        "rnn scope=encoder multi_rnn_cell=1\n"
        "cell BasicLSTMCell num_units=4 forget_bias=0.5\n"
        "cell LSTMCell num_units=5 cell_clip=0.1 forget_bias=0.5 num_proj=3 proj_clip=0.7 use_peepholes=1\n"
        "cell GRUCell num_units=6\n"
        "cell CudnnCompatibleGRUCell num_units=2\n"
        "cell LSTMCell num_units=4 forget_bias=1\n"
        "head dense name=logits classes=4\n"
        "loss sparse_softmax_cross_entropy\n");
}

TEST_CASE("the architecture text round trips every kind and option exactly", "[architecture]") {
  SECTION("every kind") {
    const cf::ModelConfig c = every_kind();
    const cf::ModelConfig back = cf::model_config_from_text(cf::to_text(c));
    CHECK(cf::differences(c, back).empty());
    CHECK(cf::to_text(back) == cf::to_text(c));
    CHECK(back.input_depth == 3);
    CHECK(back.classes == 4);
    CHECK(back.scope == "encoder");
    CHECK(back.head_name == "logits");
    CHECK(back.multi_rnn_cell);
    REQUIRE(back.cells.size() == 5);
    for (std::size_t l = 0; l < 5; ++l) {
      INFO("layer " << l);
      CHECK(back.cells[l].kind == c.cells[l].kind);
      CHECK(back.cells[l].num_units == c.cells[l].num_units);
      CHECK(back.cells[l].options == c.cells[l].options);  // doubles compared exactly
      CHECK(back.cells[l].input_depth == c.cells[l].input_depth);
      CHECK(back.cells[l].output_size == c.cells[l].output_size);
    }
    CHECK(back.cells[1].get("cell_clip") == 0.1);
    CHECK(back.cells[2].input_depth == 3);  // after the projection
  }
  SECTION("doubles that need all 17 digits, and float values") {
    cf::LSTMOptions<double> o;
    o.forget_bias = 1.0 / 3.0;
    o.cell_clip = static_cast<double>(0.1f);  // 0.100000001490116...
    o.num_proj = 2;
    o.proj_clip = 1e-300;
    cf::ModelConfig c = cf::classifier(2, {cf::LSTM(3, o), cf::BasicLSTM(2, -0.25)}, 2);
    const cf::ModelConfig back = cf::model_config_from_text(cf::to_text(c));
    CHECK(back.cells[0].get("forget_bias") == 1.0 / 3.0);
    CHECK(back.cells[0].get("cell_clip") == static_cast<double>(0.1f));
    CHECK(back.cells[0].get("proj_clip") == 1e-300);
    CHECK(back.cells[1].get("forget_bias") == -0.25);
    CHECK(cf::differences(c, back).empty());
  }
  SECTION("a single cell without MultiRNNCell, blank lines and extra spaces") {
    cf::ModelConfig c = cf::classifier(7, {cf::GRU(9)}, 3);
    c.multi_rnn_cell = false;
    const std::string text = cf::to_text(c);
    CHECK_THAT(text, Contains("rnn scope=rnn multi_rnn_cell=0\n"));
    CHECK_FALSE(cf::model_config_from_text(text).multi_rnn_cell);
    const cf::ModelConfig spaced = cf::model_config_from_text(
        "\ncellflow-model 1\n\ninput_depth   7\nrnn  scope=rnn\tmulti_rnn_cell=0\ncell GRUCell num_units=9\n"
        "head dense classes=3 name=dense\nloss sparse_softmax_cross_entropy");
    CHECK(cf::differences(spaced, c).empty());
  }
  SECTION("the text a model saves is the text load_model reads") {
    TempDir dir;
    cf::Rng rng(2);
    cf::Model<double> m(every_kind(), rng);
    m.save(dir.file("m.ckpt"));
    const cf::Model<double> back = cf::load_model<double>(dir.file("m.ckpt"));
    CHECK(cf::to_text(back.config()) == cf::to_text(every_kind()));
    CHECK(back.variables()[0].name == "encoder/multi_rnn_cell/cell_0/basic_lstm_cell/kernel");
    CHECK(back.variables()[back.variables().size() - 1].name == "logits/bias");
  }
}

TEST_CASE("model_config_from_text names the line of every malformed entry", "[architecture][errors]") {
  const std::string good = cf::to_text(cf::classifier(4, {cf::GRU(3), cf::BasicLSTM(2)}, 5));
  // good, line by line: 1 version, 2 input_depth, 3 rnn, 4 cell GRU, 5 cell LSTM, 6 head, 7 loss
  const auto with_line = [&](int line, const std::string& replacement) {
    std::vector<std::string> lines;
    std::string::size_type start = 0;
    while (start < good.size()) {
      const auto end = good.find('\n', start);
      lines.push_back(good.substr(start, end - start));
      start = end + 1;
    }
    REQUIRE(lines.size() == 7);
    lines[static_cast<std::size_t>(line - 1)] = replacement;
    std::string s;
    for (const auto& l : lines) s += l + "\n";
    return s;
  };
  const auto error = [&](int line, const std::string& replacement) {
    const std::string text = with_line(line, replacement);
    return message_of<cf::ValueError>([&] { cf::model_config_from_text(text, "my.ckpt"); });
  };
  CHECK_NOTHROW(cf::model_config_from_text(good));
  CHECK_THAT(error(1, "tensorflow-model 1"),
             Contains("my.ckpt: architecture line 1 ('tensorflow-model 1')") && Contains("cellflow-model <version>"));
  CHECK_THAT(error(1, "cellflow-model 99"), Contains("line 1") && Contains("version 99") && Contains("newer"));
  CHECK_THAT(error(1, "cellflow-model 0"), Contains("line 1") && Contains("version 0"));
  CHECK_THAT(error(1, "cellflow-model one"), Contains("line 1") && Contains("is not a non-negative integer"));
  CHECK_THAT(error(2, "input_depth -4"), Contains("line 2") && Contains("input_depth '-4'"));
  CHECK_THAT(error(2, "input_depth 4 5"), Contains("line 2") && Contains("unknown entry"));
  CHECK_THAT(error(3, "rnn scope"), Contains("line 3") && Contains("expected name=value, found 'scope'"));
  CHECK_THAT(error(3, "rnn scope=rnn scope=x"), Contains("line 3") && Contains("'scope' is given twice"));
  CHECK_THAT(error(3, "rnn scope=rnn stacked=1"), Contains("line 3") && Contains("unknown rnn setting 'stacked'"));
  CHECK_THAT(error(4, "cell FancyCell num_units=3"),
             Contains("line 4") && Contains("unknown cell kind 'FancyCell'") && Contains("newer cellflow"));
  CHECK_THAT(error(4, "cell GRUCell num_units=three"), Contains("line 4") && Contains("num_units 'three'"));
  CHECK_THAT(error(5, "cell BasicLSTMCell num_units=2 forget_bias=high"),
             Contains("line 5") && Contains("forget_bias 'high' is not a number"));
  CHECK_THAT(error(5, "cell BasicLSTMCell num_units=2 =1"), Contains("line 5") && Contains("expected name=value"));
  CHECK_THAT(error(5, "cell"), Contains("line 5") && Contains("unknown entry"));
  CHECK_THAT(error(6, "head conv classes=5"), Contains("line 6") && Contains("unknown head 'conv'"));
  CHECK_THAT(error(6, "head dense classes=5 bias=0"), Contains("line 6") && Contains("unknown head setting 'bias'"));
  CHECK_THAT(error(7, "loss"), Contains("line 7") && Contains("unknown entry"));
  CHECK_THAT(error(7, "optimizer adam"), Contains("line 7 ('optimizer adam'): unknown entry"));
  // Whole-text problems: empty, missing parts, and what validate finds.
  CHECK_THAT(message_of<cf::ValueError>([] { cf::model_config_from_text("", "f"); }),
             Contains("the architecture text is empty"));
  CHECK_THAT(error(6, ""), Contains("lacks the head"));
  CHECK_THAT(error(2, ""), Contains("lacks input_depth"));
  CHECK_THAT(error(7, ""), Contains("lacks the loss"));
  CHECK_NOTHROW(cf::model_config_from_text(with_line(5, ""), "f"));  // one cell left: fine
  CHECK_THAT(message_of<cf::ValueError>([] {
               cf::model_config_from_text(
                   "cellflow-model 1\ninput_depth 4\nrnn scope=rnn multi_rnn_cell=1\n"
                   "head dense name=dense classes=5\nloss sparse_softmax_cross_entropy\n",
                   "f");
             }),
             Contains("f: the architecture lacks cells"));
  CHECK_THAT(error(4, "cell GRUCell num_units=3 forget_bias=1"),
             Contains("my.ckpt: ") && Contains("layer 0") && Contains("GRUCell has no option 'forget_bias'"));
  CHECK_THAT(error(6, "head dense name=dense classes=0"), Contains("classes must be in [1, 2^24], given 0"));
  CHECK_THAT(error(4, "cell GRUCell num_units=0"), Contains("num_units must be in [1, 2^24], given 0"));
  CHECK_THAT(error(2, "input_depth 0"), Contains("input_depth must be in [1, 2^24], given 0"));
  CHECK_THAT(error(3, "rnn scope=rnn multi_rnn_cell=0"), Contains("multi_rnn_cell = false"));
  CHECK_THAT(error(7, "loss mse"), Contains("unknown loss 'mse'"));
}

TEST_CASE("differences lists every difference between two architectures", "[architecture]") {
  const cf::ModelConfig a = cf::classifier(4, {cf::GRU(3), cf::BasicLSTM(2)}, 5);
  CHECK(cf::differences(a, a).empty());
  cf::ModelConfig b = a;
  b.input_depth = 6;
  b.cells[0] = cf::LSTM(3);
  b.cells[1] = cf::BasicLSTM(2, 0.5);
  b.classes = 7;
  b.scope = "enc";
  b.head_name = "out";
  b.validate();
  const std::vector<std::string> d = cf::differences(a, b, "the file", "the model");
  CHECK(d == std::vector<std::string>{"input_depth: 4 in the file, 6 in the model",
                                      "layer 0: GRUCell(3) in the file, LSTMCell(3, forget_bias=1) in the model",
                                      "layer 1: BasicLSTMCell(2, forget_bias=1) in the file, "
                                      "BasicLSTMCell(2, forget_bias=0.5) in the model",
                                      "classes: 5 in the file, 7 in the model",
                                      "scope: rnn in the file, enc in the model",
                                      "head name: dense in the file, out in the model"});
  cf::ModelConfig c = cf::classifier(4, {cf::GRU(3)}, 5);
  c.multi_rnn_cell = false;
  CHECK(cf::differences(a, c) ==
        std::vector<std::string>{"layers: 2 in a, 1 in b", "multi_rnn_cell: yes in a, no in b"});
  cf::ModelConfig e = a;
  e.cells[1].num_units = 8;
  CHECK(
      cf::differences(a, e) ==
      std::vector<std::string>{"layer 1: BasicLSTMCell(2, forget_bias=1) in a, BasicLSTMCell(8, forget_bias=1) in b"});
}

// A scope or head name with whitespace could not be written into the architecture text and read
// back: ModelConfig::validate and Model refuse it up front (a TF scope has none), so whatever
// model can be built can be saved and loaded.
TEST_CASE("a model that can be built can be saved and loaded back, whatever its names", "[architecture][model]") {
  TempDir dir;
  for (const std::string name : {"my rnn", "tab\tname", "line\nbreak"}) {
    INFO("name '" << name << "'");
    for (const bool head : {false, true}) {
      cf::ModelConfig c = cf::classifier(3, {cf::GRU(2)}, 2);
      (head ? c.head_name : c.scope) = name;
      bool built = true;
      cf::Rng rng(1);
      std::unique_ptr<cf::Model<float>> m;
      try {
        m = std::make_unique<cf::Model<float>>(c, rng);
      } catch (const cf::ValueError&) {
        built = false;  // refused up front: fine
      }
      if (!built) continue;
      const std::string path = dir.file("named.ckpt");
      m->save(path);
      std::unique_ptr<cf::Model<float>> back;
      CHECK_NOTHROW(back = std::make_unique<cf::Model<float>>(cf::load_model<float>(path)));
      if (back) CHECK(cf::differences(back->config(), m->config()).empty());
    }
  }
}

}  // namespace test_architecture
