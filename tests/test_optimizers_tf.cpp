// The TF1 optimizers besides Adam (optimizers/momentum.hpp, rmsprop.hpp, adagrad.hpp on
// slot_optimizer.hpp) and the learning-rate schedules (optimizers/learning_rate_schedules.hpp,
// PerStepLearningRateScheduler in model/callbacks.hpp): every option combination against the
// independent numpy trajectories of tests/fixtures/optimizers_reference.txt (double tight, float
// loose, the learning rate changed between steps), TF's own Adagrad expectation, TF's slot names
// and initial values, checkpoint resume bitwise, states that do not fit, refused
// hyper-parameters, Model::train_step and fit with each optimizer, schedule values at hand-computed
// steps (boundaries, staircase) and the per-step schedule in fit.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "cellflow/optimizers/adagrad.hpp"
#include "cellflow/optimizers/learning_rate_schedules.hpp"
#include "cellflow/optimizers/momentum.hpp"
#include "cellflow/optimizers/rmsprop.hpp"
#include "support/test_util.hpp"

namespace test_optimizers_tf {

using namespace cellflow_test;
using Catch::Matchers::Contains;

template <class A, class B>
bool bitwise_equal(const A& a, const B& b) {
  return a.rows() == b.rows() && a.cols() == b.cols() &&
         std::memcmp(a.data(), b.data(), static_cast<std::size_t>(a.size()) * sizeof(*a.data())) == 0;
}

const std::map<std::string, FixtureCase>& cases() {
  static const auto all = load_fixture_file(fixture_path("optimizers_reference.txt"));
  return all;
}

/// The optimizer a fixture case describes.
template <class T>
std::unique_ptr<cf::SlotOptimizer<T>> make_from(const FixtureCase& c) {
  const std::string kind = c.config_str("kind");
  const double lr = c.config_num("learning_rate");
  if (kind == "momentum")
    return std::make_unique<cf::MomentumOptimizer<T>>(lr, c.config_num("momentum"), c.config_num("use_nesterov") != 0);
  if (kind == "rmsprop")
    return std::make_unique<cf::RMSPropOptimizer<T>>(lr, c.config_num("decay"), c.config_num("momentum"),
                                                     c.config_num("epsilon"), c.config_num("centered") != 0);
  REQUIRE(kind == "adagrad");
  return std::make_unique<cf::AdagradOptimizer<T>>(lr, c.config_num("initial_accumulator_value"));
}

template <class T>
cf::Matrix<T> fixture_matrix(const FixtureCase& c, const std::string& name) {
  const FixtureTensor& t = c.tensor(name);
  const Index rows = t.shape.size() == 2 ? t.shape[0] : 1;
  return mat<T>(rows, static_cast<Index>(t.size()) / rows, t.values);
}

/// Worst |a - b| / (1 + |b|).
template <class T>
double worst(const cf::Matrix<T>& a, const cf::Matrix<double>& b) {
  REQUIRE(a.rows() == b.rows());
  REQUIRE(a.cols() == b.cols());
  double w = 0;
  for (Index i = 0; i < a.size(); ++i)
    w = std::max(w, std::abs(static_cast<double>(a.data()[i]) - b.data()[i]) / (1 + std::abs(b.data()[i])));
  return w;
}

template <class T>
void check_case(const FixtureCase& c, double tol) {
  INFO("case " << c.name);
  cf::Parameter<T> w{2, 3}, b{3};
  cf::VariableList<T> vars;
  vars.add_one("w", w).add_one("b", b);
  w.value = fixture_matrix<T>(c, "w/init");
  b.value = fixture_matrix<T>(c, "b/init");
  auto opt = make_from<T>(c);
  const std::vector<double>& lrs = c.tensor("lr").values;
  const auto steps = static_cast<int>(c.config_num("steps"));
  for (int s = 0; s < steps; ++s) {
    INFO("step " << s);
    opt->set_learning_rate(lrs[static_cast<std::size_t>(s)]);
    w.grad = fixture_matrix<T>(c, "w/grad/" + std::to_string(s));
    b.grad = fixture_matrix<T>(c, "b/grad/" + std::to_string(s));
    opt->apply_gradients(vars);
    CHECK(worst(w.value, fixture_matrix<double>(c, "w/after/" + std::to_string(s))) < tol);
    CHECK(worst(b.value, fixture_matrix<double>(c, "b/after/" + std::to_string(s))) < tol);
  }
  CHECK(opt->step() == steps);
  const cf::OptimizerState<T> state = opt->export_state(vars);
  std::size_t slots = 0;
  for (const char* var : {"w", "b"})
    for (const auto& [name, tensor] : c.tensors) {
      const std::string prefix = std::string(var) + "/slot/";
      if (name.compare(0, prefix.size(), prefix) != 0) continue;
      const std::string slot = name.substr(prefix.size());
      INFO("slot " << var << "/" << slot);
      const cf::OptimizerSlot<T>* found = state.find_slot(var, slot);
      REQUIRE(found != nullptr);
      CHECK(worst(found->value, fixture_matrix<double>(c, name)) < tol);
      ++slots;
    }
  CHECK(state.slots.size() == slots);  // exactly TF's slots, no others
  CHECK(opt->slot_names().size() * 2 == slots);
}

TEMPLATE_TEST_CASE("Momentum, RMSProp and Adagrad follow TF1's updates in every option combination",
                   "[optimizers][optimizers_tf][head]", float, double) {
  const double tol = sizeof(TestType) == 8 ? 1e-14 : 2e-6;
  REQUIRE(cases().size() == 9);
  for (const auto& named : cases()) check_case<TestType>(named.second, tol);
}

TEMPLATE_TEST_CASE("Adagrad reproduces TF's own test expectation", "[optimizers][optimizers_tf]", float, double) {
  // adagrad_test.py testBasic: lr 3.0, initial_accumulator_value 0.1, three steps.
  cf::Parameter<TestType> v0{2}, v1{2};
  v0.value << TestType(1), TestType(2);
  v1.value << TestType(3), TestType(4);
  v0.grad.setConstant(TestType(0.1));
  v1.grad.setConstant(TestType(0.01));
  cf::VariableList<TestType> vars;
  vars.add_one("var0", v0).add_one("var1", v1);
  cf::AdagradOptimizer<TestType> ada(3.0, 0.1);
  for (int s = 0; s < 3; ++s) ada.apply_gradients(vars);
  CHECK(v0.value(0, 0) == Approx(-1.6026098728179932).epsilon(1e-6));
  CHECK(v0.value(0, 1) == Approx(-0.6026098728179932).epsilon(1e-6));
  CHECK(v1.value(0, 0) == Approx(2.715679168701172).epsilon(1e-6));
  CHECK(v1.value(0, 1) == Approx(3.715679168701172).epsilon(1e-6));
}

/// Runs `opt` for 3 steps on one variable of 200 values; `kernel` and `textbook` step the same
/// values as TF's kernel and as the documented formula write them. The optimizer must equal the
/// kernel's form bitwise, and the textbook form must differ somewhere (else the test would not
/// tell the orders apart).
template <class T, class Kernel, class Textbook>
void check_kernel_order(cf::Optimizer<T>& opt, Kernel kernel, Textbook textbook) {
  cf::Rng rng(21);
  cf::Parameter<T> p{200};
  for (Index i = 0; i < p.size(); ++i) p.value.data()[i] = rng.uniform<T>(T(-1), T(1));
  cf::VariableList<T> vars;
  vars.add_one("p", p);
  cf::Matrix<T> by_kernel = p.value, by_textbook = p.value;
  std::vector<std::vector<T>> ks(3, std::vector<T>(200)), ts = ks;  // up to three slots per value
  int differ = 0;
  for (int step = 0; step < 3; ++step) {
    for (Index i = 0; i < p.size(); ++i) p.grad.data()[i] = rng.uniform<T>(T(-1), T(1));
    opt.apply_gradients(vars);
    for (Index i = 0; i < p.size(); ++i) {
      const auto k = static_cast<std::size_t>(i);
      kernel(by_kernel.data()[i], p.grad.data()[i], ks[0][k], ks[1][k], ks[2][k], step);
      textbook(by_textbook.data()[i], p.grad.data()[i], ts[0][k], ts[1][k], ts[2][k], step);
    }
    CHECK(bitwise_equal(p.value, by_kernel));
    for (Index i = 0; i < p.size(); ++i) differ += by_textbook.data()[i] != by_kernel.data()[i];
  }
  CHECK(differ > 0);
}

TEMPLATE_TEST_CASE("the updates use TF's kernel order of operations, bitwise", "[optimizers][optimizers_tf]", float,
                   double) {
  using T = TestType;
  const T lr(0.1), mu(0.9), rho(0.9), eps(1e-3);
  SECTION("Nesterov momentum") {
    cf::MomentumOptimizer<T> opt(lr, mu, true);
    check_kernel_order<T>(
        opt,
        [&](T& v, T g, T& a, T&, T&, int) {
          a = a * mu + g;
          v -= g * lr + a * mu * lr;
        },
        [&](T& v, T g, T& a, T&, T&, int) {
          a = mu * a + g;
          v -= lr * (g + mu * a);
        });
  }
  SECTION("centered RMSProp with momentum") {
    cf::RMSPropOptimizer<T> opt(lr, rho, mu, eps, true);
    check_kernel_order<T>(
        opt,
        [&](T& v, T g, T& ms, T& mg, T& mom, int step) {
          if (step == 0) ms = T(1);
          ms += (g * g - ms) * (T(1) - rho);
          mg += (g - mg) * (T(1) - rho);
          mom = mom * mu + (g * lr) / std::sqrt((ms - mg * mg) + eps);
          v -= mom;
        },
        [&](T& v, T g, T& ms, T& mg, T& mom, int step) {
          if (step == 0) ms = T(1);
          ms = rho * ms + (T(1) - rho) * g * g;
          mg = rho * mg + (T(1) - rho) * g;
          mom = mu * mom + lr * g / std::sqrt(ms - mg * mg + eps);
          v -= mom;
        });
  }
  SECTION("Adagrad") {
    cf::AdagradOptimizer<T> opt(lr, 0.1);
    check_kernel_order<T>(
        opt,
        [&](T& v, T g, T& acc, T&, T&, int step) {
          if (step == 0) acc = T(0.1);
          acc += g * g;
          v -= (g * lr) * (T(1) / std::sqrt(acc));
        },
        [&](T& v, T g, T& acc, T&, T&, int step) {
          if (step == 0) acc = T(0.1);
          acc += g * g;
          v -= lr * g / std::sqrt(acc);
        });
  }
}

TEST_CASE("TF's defaults, slot names and slot initial values", "[optimizers][optimizers_tf]") {
  cf::RMSPropOptimizer<double> rms(0.01);
  CHECK(rms.decay() == 0.9);
  CHECK(rms.momentum() == 0.0);
  CHECK(rms.epsilon() == 1e-10);
  CHECK_FALSE(rms.centered());
  CHECK(rms.kind() == "rmsprop");
  CHECK(rms.slot_names() == std::vector<std::string>{"rms", "momentum"});
  CHECK(cf::RMSPropOptimizer<double>(0.01, 0.9, 0.0, 1e-10, true).slot_names() ==
        std::vector<std::string>{"rms", "mg", "momentum"});
  cf::AdagradOptimizer<float> ada(0.1);
  CHECK(ada.initial_accumulator_value() == 0.1f);
  CHECK(ada.slot_names() == std::vector<std::string>{"accumulator"});
  cf::MomentumOptimizer<float> mom(0.1, 0.9);
  CHECK_FALSE(mom.use_nesterov());
  CHECK(mom.momentum() == 0.9f);
  CHECK(mom.slot_names() == std::vector<std::string>{"momentum"});
  CHECK(mom.kind() == "momentum");
  CHECK(ada.kind() == "adagrad");

  // Slots appear with the first step, at TF's initial values: a zero gradient leaves the
  // accumulator at its start, the mean square at 1 decayed once, the momentum at 0.
  cf::Parameter<double> p{2, 2};
  p.grad.setZero();
  cf::VariableList<double> vars;
  vars.add_one("p", p);
  cf::AdagradOptimizer<double> ada_d(0.1, 0.25);
  CHECK(ada_d.slots("accumulator").empty());
  rms.apply_gradients(vars);
  ada_d.apply_gradients(vars);
  CHECK(rms.slots("rms")[0] == cf::Matrix<double>::Constant(2, 2, 1.0 + (0.0 - 1.0) * (1.0 - 0.9)));
  CHECK(rms.slots("momentum")[0] == cf::Matrix<double>::Zero(2, 2));
  CHECK(ada_d.slots("accumulator")[0] == cf::Matrix<double>::Constant(2, 2, 0.25));
  CHECK_THAT(message_of<cf::ValueError>([&] { rms.slots("mg"); }),
             Contains("RMSPropOptimizer::slots: no slot 'mg'; the slots are 'rms', 'momentum'"));
}

/// Two variables with values and step-dependent gradients (like a real loss).
template <class T>
struct Vars {
  cf::Parameter<T> w{2, 3}, b{3};
  cf::VariableList<T> list;
  Vars() {
    for (Index i = 0; i < 6; ++i) w.value.data()[i] = T(0.1) * T(i) - T(0.2);
    for (Index i = 0; i < 3; ++i) b.value.data()[i] = T(0.3) - T(0.05) * T(i);
    list.add_one("w", w).add_one("b", b);
  }
  void set_gradients(int step) {
    for (cf::Parameter<T>* p : {&w, &b})
      for (Index i = 0; i < p->size(); ++i)
        p->grad.data()[i] = T(0.5) * p->value.data()[i] + T(0.01) * T((i + step) % 5) - T(0.02);
  }
};

template <class T>
std::vector<std::unique_ptr<cf::Optimizer<T>>> every_kind() {
  std::vector<std::unique_ptr<cf::Optimizer<T>>> v;
  v.push_back(std::make_unique<cf::MomentumOptimizer<T>>(0.1, 0.9));
  v.push_back(std::make_unique<cf::MomentumOptimizer<T>>(0.1, 0.8, true));
  v.push_back(std::make_unique<cf::RMSPropOptimizer<T>>(0.01));
  v.push_back(std::make_unique<cf::RMSPropOptimizer<T>>(0.01, 0.8, 0.5, 1e-6, true));
  v.push_back(std::make_unique<cf::AdagradOptimizer<T>>(0.2, 0.3));
  return v;
}

/// A fresh optimizer of the same kind with other hyper-parameters (a resumed run's).
template <class T>
std::unique_ptr<cf::Optimizer<T>> fresh_of_kind(const std::string& kind) {
  if (kind == "momentum") return std::make_unique<cf::MomentumOptimizer<T>>(1.0, 0.1);
  if (kind == "rmsprop") return std::make_unique<cf::RMSPropOptimizer<T>>(1.0);
  return std::make_unique<cf::AdagradOptimizer<T>>(1.0);
}

TEMPLATE_TEST_CASE("a run resumed from a checkpoint equals the uninterrupted one bitwise",
                   "[optimizers][optimizers_tf][checkpoint]", float, double) {
  for (auto& opt : every_kind<TestType>()) {
    const cf::OptimizerState<TestType> hyper = opt->export_state(cf::VariableList<TestType>{});
    INFO(opt->kind() << " with " << hyper.counters.begin()->first << " " << hyper.counters.begin()->second);
    Vars<TestType> whole;
    for (int s = 0; s < 3; ++s) {
      whole.set_gradients(s);
      opt->apply_gradients(whole.list);
    }
    const std::vector<std::uint8_t> bytes = cf::io::checkpoint_bytes(whole.list, opt.get());
    opt->set_learning_rate(0.05);  // a schedule's change after the checkpoint, in both runs
    for (int s = 3; s < 6; ++s) {
      whole.set_gradients(s);
      opt->apply_gradients(whole.list);
    }

    Vars<TestType> resumed;
    resumed.w.value.setZero();
    auto other = fresh_of_kind<TestType>(opt->kind());
    const cf::io::CheckpointInfo info = cf::io::load_checkpoint_bytes(bytes, resumed.list, other.get());
    CHECK(info.optimizer == opt->kind());
    CHECK(info.optimizer_step == 3);
    other->set_learning_rate(0.05);
    for (int s = 3; s < 6; ++s) {
      resumed.set_gradients(s);
      other->apply_gradients(resumed.list);
    }
    CHECK(bitwise_equal(whole.w.value, resumed.w.value));
    CHECK(bitwise_equal(whole.b.value, resumed.b.value));
    const auto a = opt->export_state(whole.list), b = other->export_state(resumed.list);
    CHECK(a.counters == b.counters);
    CHECK(a.scalars == b.scalars);
    REQUIRE(a.slots.size() == b.slots.size());
    for (const auto& [key, slot] : a.slots) CHECK(bitwise_equal(slot.value, b.find_slot(key.first, key.second)->value));
  }
}

TEST_CASE("a state that does not fit is refused with every problem, and changes nothing",
          "[optimizers][optimizers_tf][errors]") {
  Vars<double> v;
  v.set_gradients(0);
  cf::RMSPropOptimizer<double> centered(0.01, 0.9, 0.0, 1e-10, true);
  centered.apply_gradients(v.list);
  const cf::OptimizerState<double> good = centered.export_state(v.list);

  cf::RMSPropOptimizer<double> plain(0.5);
  // A centered state needs "mg"; its counter "centered" says so.
  cf::OptimizerState<double> s = good;
  s.slots.erase({"w", "mg"});
  s.counters["centered"] = 2;
  s.scalars["decay"] = 1.5;
  s.slots[{"b", "rms"}].value(0, 1) = -1;
  CHECK_THAT(message_of<cf::ValueError>([&] { plain.import_state(s, v.list); }),
             Contains("the counter 'centered' = 2 is not 0 or 1") && Contains("'decay' = 1.5 is not in [0, 1]"));
  s.counters["centered"] = 1;
  const std::string msg = message_of<cf::ValueError>([&] { plain.import_state(s, v.list); });
  CHECK_THAT(msg, Contains("RMSPropOptimizer::import_state: the state does not fit (3 problems)") &&
                      Contains("the slot 'mg' of 'w' is missing") && Contains("rms[1] = -1 is negative"));
  CHECK(plain.learning_rate() == 0.5);
  CHECK_FALSE(plain.centered());
  CHECK(plain.step() == 0);
  // The same state without "centered" misses the mg slots of no variable: it would be refused as
  // unknown slots.
  s = good;
  s.counters["centered"] = 0;
  CHECK_THAT(message_of<cf::ValueError>([&] { plain.import_state(s, v.list); }),
             Contains("unknown slot 'mg' of 'w' (the slots are 'rms', 'momentum')"));
  // Another kind, through a checkpoint: nothing changes.
  cf::MomentumOptimizer<double> mom(0.1, 0.9);
  const auto bytes = cf::io::checkpoint_bytes(v.list, &centered);
  const cf::Matrix<double> before = v.w.value;
  CHECK_THAT(message_of<cf::ValueError>([&] { cf::io::load_checkpoint_bytes(bytes, v.list, &mom); }),
             Contains("the file holds the state of a 'rmsprop' optimizer, the optimizer given is 'momentum'"));
  CHECK(v.w.value == before);
  // Missing counters and slots after steps.
  cf::OptimizerState<double> bare;
  bare.kind = "momentum";
  bare.scalars = {{"learning_rate", 0.1}, {"momentum", 0.9}};
  bare.counters = {{"step", 4}};
  const std::string m2 = message_of<cf::ValueError>([&] { mom.import_state(bare, v.list); });
  CHECK_THAT(m2, Contains("the counter 'use_nesterov' is missing"));
  bare.counters["use_nesterov"] = 1;
  CHECK_THAT(message_of<cf::ValueError>([&] { mom.import_state(bare, v.list); }),
             Contains("no slots, but 4 steps taken: MomentumOptimizer has slots after its first step"));
  // A negative accumulator, a non-positive initial value.
  cf::AdagradOptimizer<double> ada(0.1);
  ada.apply_gradients(v.list);
  cf::OptimizerState<double> a = ada.export_state(v.list);
  a.scalars["initial_accumulator_value"] = 0;
  a.slots[{"w", "accumulator"}].value(1, 2) = -0.5;
  const std::string m3 = message_of<cf::ValueError>([&] { ada.check_state(a, v.list); });
  CHECK_THAT(m3, Contains("'initial_accumulator_value' = 0 is not finite and > 0") &&
                     Contains("accumulator[5] = -0.5 is negative"));
}

TEST_CASE("the slots belong to the variables they were made for", "[optimizers][optimizers_tf][errors]") {
  Vars<float> v;
  v.set_gradients(0);
  cf::MomentumOptimizer<float> mom(0.1, 0.9);
  mom.apply_gradients(v.list);
  cf::VariableList<float> swapped;
  swapped.add_one("b", v.b).add_one("w", v.w);
  CHECK_THAT(message_of<cf::ShapeError>([&] { mom.apply_gradients(swapped); }),
             Contains("MomentumOptimizer::apply_gradients: variable 0 ('b') is [3], its slots were made for 2x3"));
  cf::VariableList<float> fewer;
  fewer.add_one("w", v.w);
  CHECK_THAT(message_of<cf::ShapeError>([&] { mom.apply_gradients(fewer); }),
             Contains("holds slots for 2 variables, given 1"));
  CHECK_THAT(message_of<cf::ValueError>([&] { mom.export_state(fewer); }),
             Contains("MomentumOptimizer::export_state: the optimizer holds slots for 2 variables, the list has 1"));
  v.b.grad.resize(0, 0);
  const cf::Matrix<float> w_before = v.w.value;
  CHECK_THAT(message_of<cf::ShapeError>([&] { mom.apply_gradients(v.list); }),
             Contains("MomentumOptimizer::apply_gradients: variable 1 ('b') has no gradient"));
  CHECK(v.w.value == w_before);
  CHECK(mom.step() == 1);
}

TEST_CASE("hyper-parameters out of TF's ranges are refused with a clear error", "[optimizers][optimizers_tf][errors]") {
  const double nan = std::nan(""), inf = HUGE_VAL;
  CHECK_THAT(message_of<cf::ValueError>([&] { cf::MomentumOptimizer<float>(-0.1, 0.9); }),
             Contains("MomentumOptimizer: the learning rate must be finite and >= 0, given -0.1"));
  CHECK_THAT(message_of<cf::ValueError>([&] { cf::MomentumOptimizer<float>(0.1, 1.5); }),
             Contains("MomentumOptimizer: momentum must be in [0, 1], given 1.5"));
  CHECK_THAT(message_of<cf::ValueError>([&] { cf::MomentumOptimizer<double>(0.1, nan); }),
             Contains("momentum must be in [0, 1], given nan"));
  CHECK_THAT(message_of<cf::ValueError>([&] { cf::RMSPropOptimizer<double>(0.1, -0.1); }),
             Contains("RMSPropOptimizer: decay must be in [0, 1], given -0.1"));
  CHECK_THAT(message_of<cf::ValueError>([&] { cf::RMSPropOptimizer<double>(0.1, 0.9, 2.0); }),
             Contains("RMSPropOptimizer: momentum must be in [0, 1], given 2"));
  CHECK_THAT(message_of<cf::ValueError>([&] { cf::RMSPropOptimizer<double>(0.1, 0.9, 0.0, -1e-10); }),
             Contains("RMSPropOptimizer: epsilon must be finite and >= 0, given -1e-10"));
  CHECK_THAT(message_of<cf::ValueError>([&] { cf::RMSPropOptimizer<float>{inf}; }),
             Contains("RMSPropOptimizer: the learning rate must be finite and >= 0, given inf"));
  CHECK_THAT(message_of<cf::ValueError>([&] { cf::AdagradOptimizer<double>(0.1, 0.0); }),
             Contains("AdagradOptimizer: initial_accumulator_value must be finite and > 0, given 0"));
  CHECK_THAT(message_of<cf::ValueError>([&] { cf::AdagradOptimizer<float>(0.1, 1e300); }),
             Contains("given 1e+300 (too large for this scalar type)"));
  cf::AdagradOptimizer<float> ada(0.1);
  CHECK_THAT(message_of<cf::ValueError>([&] { ada.set_learning_rate(-1); }),
             Contains("AdagradOptimizer::set_learning_rate: the learning rate must be finite and >= 0, given -1"));
  CHECK(ada.learning_rate() == 0.1f);
  // Edges that are allowed: no momentum, a full decay, epsilon 0, a learning rate of 0.
  CHECK_NOTHROW(cf::MomentumOptimizer<double>(0.0, 0.0));
  CHECK_NOTHROW(cf::MomentumOptimizer<double>(0.1, 1.0));
  CHECK_NOTHROW(cf::RMSPropOptimizer<double>(0.1, 1.0, 0.0, 0.0));
}

TEST_CASE("Model::train_step and fit train with each optimizer", "[optimizers][optimizers_tf][model]") {
  cf::Rng data_rng(11);
  const Index batch = 16;
  cf::Tensor3<float> x = random_tensor<float>(batch, 4, 3, data_rng);
  std::vector<int> y;
  for (Index i = 0; i < batch; ++i) y.push_back(x(i, 3, 0) > x(i, 3, 1) ? 1 : 0);
  std::vector<std::unique_ptr<cf::Optimizer<float>>> opts;
  opts.push_back(std::make_unique<cf::MomentumOptimizer<float>>(0.1, 0.9));
  opts.push_back(std::make_unique<cf::MomentumOptimizer<float>>(0.1, 0.9, true));
  opts.push_back(std::make_unique<cf::RMSPropOptimizer<float>>(0.05));
  opts.push_back(std::make_unique<cf::RMSPropOptimizer<float>>(0.02, 0.9, 0.5, 1e-10, true));
  opts.push_back(std::make_unique<cf::AdagradOptimizer<float>>(0.3));
  cf::TrainOptions one_thread;
  one_thread.batch_threads = 1;
  for (auto& opt : opts) {
    INFO(opt->kind());
    cf::Rng rng(4);
    cf::Model<float> model(3, {cf::GRU(5)}, 2, rng);
    const double first = model.train_step(x, y, *opt, one_thread).loss;
    double last = first;
    for (int s = 0; s < 25; ++s) last = model.train_step(x, y, *opt, one_thread).loss;
    CHECK(last < 0.8 * first);
  }
  // fit with ReduceLROnPlateau and a checkpoint per epoch holding the optimizer.
  cf::data::Dataset<float> d;
  d.images = x;
  d.labels = y;
  cf::Rng rng(4);
  cf::Model<float> model(3, {cf::GRU(5)}, 2, rng);
  cf::RMSPropOptimizer<float> rms(0.01, 0.9, 0.0, 1e-10, true);
  cf::FitOptions fo;
  fo.epochs = 3;
  fo.batch_size = 8;
  fo.batch_threads = 1;
  fo.verbose = false;
  cf::ReduceLROnPlateau plateau("loss", 0.5, 1, 10.0);  // min_delta 10: epochs 2 and 3 are plateaus
  const cf::History h = cf::fit(model, rms, d, fo, plateau);
  CHECK(h.epochs.size() == 3);
  CHECK(rms.learning_rate() == 0.01f * 0.5f * 0.5f);
  CHECK(rms.step() == 6);
}

TEST_CASE("exponential_decay and piecewise_constant at hand-computed steps", "[optimizers][optimizers_tf][schedules]") {
  // lr * rate^(step / steps): 0.1 * 0.5^(step / 1000).
  CHECK(cf::exponential_decay(0.1, 0, 1000, 0.5) == 0.1);
  CHECK(cf::exponential_decay(0.1, 1000, 1000, 0.5) == 0.05);
  CHECK(cf::exponential_decay(0.1, 2000, 1000, 0.5) == 0.025);
  CHECK(cf::exponential_decay(0.1, 500, 1000, 0.5) == Approx(0.1 / std::sqrt(2.0)).epsilon(1e-15));
  CHECK(cf::exponential_decay(0.1, 1500, 1000, 0.5) == Approx(0.05 / std::sqrt(2.0)).epsilon(1e-15));
  // staircase: the exponent floored; the rate steps at multiples of decay_steps.
  CHECK(cf::exponential_decay(0.1, 999, 1000, 0.5, true) == 0.1);
  CHECK(cf::exponential_decay(0.1, 1000, 1000, 0.5, true) == 0.05);
  CHECK(cf::exponential_decay(0.1, 1999, 1000, 0.5, true) == 0.05);
  CHECK(cf::exponential_decay(0.1, 2500, 1000, 0.5, true) == 0.025);
  // In float, as TF does for a Python float: the float32 computation.
  const float f = cf::exponential_decay(0.1f, 300, 1000, 0.96f);
  CHECK(f == 0.1f * std::pow(0.96f, 300.0f / 1000.0f));
  const cf::ExponentialDecay<float> sched(0.1, 100000, 0.96, true);
  CHECK(sched(250000) == 0.1f * 0.96f * 0.96f);
  CHECK(sched.staircase());
  CHECK(sched.decay_steps() == 100000.0f);

  // TF's documented example: boundaries [100000, 110000], values [1.0, 0.5, 0.1].
  const cf::PiecewiseConstant<double> pc({100000, 110000}, {1.0, 0.5, 0.1});
  CHECK(pc(0) == 1.0);
  CHECK(pc(100000) == 1.0);  // x <= b0
  CHECK(pc(100001) == 0.5);
  CHECK(pc(110000) == 0.5);  // b0 < x <= b1
  CHECK(pc(110001) == 0.1);  // x > last
  CHECK(pc(-5) == 1.0);
  CHECK(cf::piecewise_constant(7, {5}, {0.01f, 0.001f}) == 0.001f);
  CHECK(cf::piecewise_constant(5, {5}, {0.01f, 0.001f}) == 0.01f);
  const std::vector<long long> bounds{10, 20, 30};
  const std::vector<double> values{4, 3, 2, 1};
  CHECK(cf::piecewise_constant(25, bounds, values) == 2);

  CHECK_THAT(message_of<cf::ValueError>([] {
               cf::piecewise_constant(1, {10, 20}, {1.0, 2.0});
             }),
             Contains("the length of boundaries should be 1 less than the length of values; given 2 boundaries "
                      "and 2 values"));
  CHECK_THAT(message_of<cf::ValueError>([] {
               cf::piecewise_constant(1, {20, 10}, {1.0, 2.0, 3.0});
             }),
             Contains("the boundaries must increase strictly; boundary 0 is 20, boundary 1 is 10"));
  CHECK_THAT(message_of<cf::ValueError>([] { cf::PiecewiseConstant<double>({}, {1.0}); }),
             Contains("at least one boundary is needed"));
  CHECK_THAT(message_of<cf::ValueError>([] { cf::exponential_decay(0.1, -1, 1000, 0.5); }),
             Contains("exponential_decay: global_step must be >= 0, given -1"));
  CHECK_THAT(message_of<cf::ValueError>([] { cf::exponential_decay(0.1, 1, 0, 0.5); }),
             Contains("exponential_decay: decay_steps must be finite and > 0, given 0"));
  CHECK_THAT(message_of<cf::ValueError>([] { cf::exponential_decay(0.1, 1, 10, -0.5); }),
             Contains("exponential_decay: decay_rate must be finite and >= 0, given -0.5"));
  CHECK_THAT(message_of<cf::ValueError>([] { cf::ExponentialDecay<float>(-0.1, 10, 0.5); }),
             Contains("exponential_decay: learning_rate must be finite and >= 0, given -0.1"));
}

TEST_CASE("a hand-written loop with a decayed rate per step, and PerStepLearningRateScheduler in fit",
          "[optimizers][optimizers_tf][schedules][fit]") {
  // By hand: step k uses the rate of global step k.
  Vars<double> v;
  cf::MomentumOptimizer<double> mom(1.0, 0.0);  // plain gradient descent with the schedule's rate
  const cf::ExponentialDecay<double> sched(0.2, 2, 0.5, true);
  std::vector<cf::Matrix<double>> expect;
  cf::Matrix<double> w = v.w.value;
  for (long long step = 0; step < 5; ++step) {
    v.set_gradients(static_cast<int>(step));
    w -= v.w.grad * sched(step);
    mom.set_learning_rate(sched(step));
    mom.apply_gradients(v.list);
    CHECK(v.w.value == w);
  }
  CHECK(mom.learning_rate() == 0.05);  // 0.2 * 0.5^floor(4 / 2)

  // In fit: 20 examples in batches of 8 to 15 make 2 steps an epoch. The rate each step used is
  // seen by a callback that runs before the scheduler's on_batch_end.
  cf::Rng data_rng(12);
  cf::data::Dataset<float> d;
  d.images = random_tensor<float>(20, 3, 2, data_rng);
  for (int i = 0; i < 20; ++i) d.labels.push_back(i % 2);
  cf::Rng rng(5);
  cf::Model<float> model(2, {cf::BasicLSTM(3)}, 2, rng);
  cf::AdagradOptimizer<float> ada(1.0);
  cf::FitOptions fo;
  fo.epochs = 2;
  fo.batch_size = 8;
  fo.batch_threads = 1;
  fo.verbose = false;
  std::vector<double> used;
  cf::LambdaCallback record;
  record.batch_end = [&](cf::FitContext& ctx, const cf::BatchLogs&) { used.push_back(ctx.learning_rate()); };
  cf::PerStepLearningRateScheduler per_step([](long long step) { return 0.001 * static_cast<double>(step + 1); });
  cf::fit(model, ada, d, fo, record, per_step);
  REQUIRE(used.size() == 4);
  for (std::size_t k = 0; k < used.size(); ++k)
    CHECK(used[k] == static_cast<float>(0.001 * static_cast<double>(k + 1)));
  CHECK(per_step.global_step() == 4);
  // A resumed run (initial_epoch 2) goes on at global step 2 * 2 = 4.
  used.clear();
  fo.initial_epoch = 2;
  fo.epochs = 1;
  cf::fit(model, ada, d, fo, record, per_step);
  REQUIRE(used.size() == 2);
  CHECK(used[0] == static_cast<float>(0.005));
  CHECK(used[1] == static_cast<float>(0.006));
  // The schedule objects plug in directly.
  cf::PerStepLearningRateScheduler decayed(cf::PiecewiseConstant<float>({0}, {0.5f, 0.25f}));
  used.clear();
  fo.initial_epoch = 0;
  cf::fit(model, ada, d, fo, record, decayed);
  CHECK(used == std::vector<double>{0.5, 0.25});
  CHECK_THROWS_AS(cf::PerStepLearningRateScheduler(nullptr), cf::ValueError);
}

}  // namespace test_optimizers_tf
