// The optimizers (optimizers/optimizer.hpp, adam.hpp, gradient_descent.hpp): Adam against TF1's
// update formula (epsilon-hat, float32 running beta powers), gradient descent, the variable lists
// Adam refuses; their state as named tensors (export, check, import: all or nothing, slots matched
// by variable name), arguments of any arithmetic type, refused hyper-parameters (NaN, infinities,
// negative values), gradients that are missing or misshapen (ShapeError naming the variable,
// nothing changed) and Adam's last step size. TF's own Adam golden is in test_tf_goldens.cpp,
// Adam's state in checkpoints in test_checkpoint.cpp.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "cellflow/optimizers/adam.hpp"
#include "cellflow/optimizers/gradient_descent.hpp"
#include "cellflow/optimizers/optimizer.hpp"
#include "support/test_util.hpp"

namespace test_optimizers {

using namespace cellflow_test;
using Catch::Matchers::Contains;
using Catch::Matchers::Equals;
using cf::Index;

template <class A, class B>
bool bitwise_equal(const A& a, const B& b) {
  return a.rows() == b.rows() && a.cols() == b.cols() &&
         std::memcmp(a.data(), b.data(), static_cast<std::size_t>(a.size()) * sizeof(*a.data())) == 0;
}

template <class T>
std::uint64_t bits(T x) {
  std::uint64_t u = 0;
  std::memcpy(&u, &x, sizeof x);
  return u;
}

/// Three variables w [2, 3], b [3], s [1] with values and gradients from a simple formula.
template <class T>
struct Vars {
  cf::Parameter<T> w{2, 3}, b{3}, s{1};
  cf::VariableList<T> list;
  explicit Vars(bool reversed = false) {
    for (Index i = 0; i < 6; ++i) w.value.data()[i] = T(0.1) * T(i) - T(0.2);
    for (Index i = 0; i < 3; ++i) b.value.data()[i] = T(0.3) - T(0.05) * T(i);
    s.value(0, 0) = T(1.5);
    if (reversed)
      list.add_one("s", s).add_one("b", b).add_one("w", w);
    else
      list.add_one("w", w).add_one("b", b).add_one("s", s);
  }
  /// Gradients that depend on the values and the step, like a real loss.
  void set_gradients(int step) {
    for (cf::Parameter<T>* p : {&w, &b, &s})
      for (Index i = 0; i < p->size(); ++i)
        p->grad.data()[i] = T(0.5) * p->value.data()[i] + T(0.01) * T((i + step) % 5) - T(0.02);
  }
  bool same_values(const Vars& o) const {
    return bitwise_equal(w.value, o.w.value) && bitwise_equal(b.value, o.b.value) && bitwise_equal(s.value, o.s.value);
  }
};

template <class T>
bool same_state(const cf::OptimizerState<T>& a, const cf::OptimizerState<T>& b) {
  if (a.kind != b.kind || a.counters != b.counters || a.scalars.size() != b.scalars.size() ||
      a.slots.size() != b.slots.size())
    return false;
  for (const auto& [name, value] : a.scalars)
    if (b.scalars.count(name) == 0 || bits(b.scalars.at(name)) != bits(value)) return false;
  for (const auto& [key, slot] : a.slots) {
    const auto* other = b.find_slot(key.first, key.second);
    if (other == nullptr || other->shape != slot.shape || !bitwise_equal(other->value, slot.value)) return false;
  }
  return true;
}

TEMPLATE_TEST_CASE("Adam follows TF1's update formula over several steps", "[optimizers][adam][head]", float, double) {
  using T = TestType;
  cf::Rng rng(11);
  cf::Parameter<T> w(3, 4), b(4);
  w.value = random_matrix<T>(3, 4, rng);
  b.value = random_matrix<T>(1, 4, rng);
  cf::VariableList<T> vars;
  vars.add_one("w", w).add_one("b", b);
  const T lr = T(0.01), b1 = T(0.8), b2 = T(0.95), eps = T(0.1);  // a large epsilon shows its form
  cf::AdamOptimizer<T> adam(lr, b1, b2, eps);

  // Independent reference in long double, TF's equations written out.
  std::vector<std::vector<long double>> var(2), m(2), v(2);
  for (int k = 0; k < 2; ++k)
    for (cf::Index i = 0; i < vars[k].size(); ++i) {
      var[k].push_back(vars[k].value->data()[i]);
      m[k].push_back(0);
      v[k].push_back(0);
    }
  long double p1 = b1, p2 = b2;
  for (int step = 1; step <= 5; ++step) {
    for (int k = 0; k < 2; ++k)
      *vars[static_cast<std::size_t>(k)].grad =
          random_matrix<T>(vars[k].value->rows(), vars[k].value->cols(), rng, T(-2), T(2));
    adam.apply_gradients(vars);
    const long double alpha = (long double)lr * std::sqrt(1.0L - p2) / (1.0L - p1);
    for (int k = 0; k < 2; ++k)
      for (std::size_t i = 0; i < var[k].size(); ++i) {
        const long double g = vars[static_cast<std::size_t>(k)].grad->data()[i];
        m[k][i] += (g - m[k][i]) * (1.0L - b1);
        v[k][i] += (g * g - v[k][i]) * (1.0L - b2);
        var[k][i] -= m[k][i] * alpha / (std::sqrt(v[k][i]) + (long double)eps);
      }
    p1 *= b1;
    p2 *= b2;
    const double tol = sizeof(T) == 4 ? 2e-6 : 1e-13;
    for (int k = 0; k < 2; ++k)
      for (std::size_t i = 0; i < var[k].size(); ++i)
        REQUIRE(std::abs(double(vars[static_cast<std::size_t>(k)].value->data()[i]) - double(var[k][i])) <= tol);
    REQUIRE(adam.step() == step);
    REQUIRE(double(adam.beta1_power()) == Approx(double(p1)).epsilon(1e-6));
    REQUIRE(double(adam.beta2_power()) == Approx(double(p2)).epsilon(1e-6));
  }
}

TEST_CASE("Adam's epsilon is TF's epsilon hat, not Kingma and Ba's bias-corrected form", "[optimizers][adam][head]") {
  cf::Parameter<double> w(1);
  w.value(0, 0) = 1.0;
  w.grad(0, 0) = 0.5;
  cf::VariableList<double> vars;
  vars.add_one("w", w);
  const double lr = 0.1, b1 = 0.9, b2 = 0.999, eps = 1.0;
  cf::AdamOptimizer<double> adam(lr, b1, b2, eps);
  adam.apply_gradients(vars);
  // Step 1: m = 0.05, v = 0.00025; TF: 1 - lr*sqrt(1-b2)/(1-b1) * m/(sqrt(v)+eps).
  const double m = 0.05, v = 0.00025;
  const double tf = 1.0 - lr * std::sqrt(1 - b2) / (1 - b1) * m / (std::sqrt(v) + eps);
  const double kingma = 1.0 - lr * (m / (1 - b1)) / (std::sqrt(v / (1 - b2)) + eps);
  REQUIRE(w.value(0, 0) == Approx(tf).epsilon(1e-14));
  REQUIRE(std::abs(tf - kingma) > 1e-3);  // the two forms are far apart with a large epsilon
}

TEST_CASE("Adam in float keeps TF's float32 running beta powers", "[optimizers][adam][head]") {
  cf::Parameter<float> w(2);
  cf::VariableList<float> vars;
  vars.add_one("w", w);
  cf::AdamOptimizer<float> adam;
  float p1 = 0.9f, p2 = 0.999f;
  for (int t = 0; t < 50; ++t) {
    w.grad.setConstant(0.1f);
    adam.apply_gradients(vars);
    p1 *= 0.9f;
    p2 *= 0.999f;
  }
  REQUIRE(adam.beta1_power() == p1);  // bitwise: repeated float32 multiplication
  REQUIRE(adam.beta2_power() == p2);
}

TEST_CASE("GradientDescentOptimizer subtracts learning_rate * grad", "[optimizers][head]") {
  cf::Rng rng(12);
  cf::Dense<double> d(3, 2, rng);
  cf::VariableList<double> vars;
  vars.add(d);
  const cf::Matrix<double> k0 = d.kernel().value;
  d.kernel().grad = random_matrix<double>(3, 2, rng);
  d.bias().grad.setConstant(2.0);
  cf::GradientDescentOptimizer<double> sgd(0.5);
  sgd.apply_gradients(vars);
  REQUIRE(max_abs_diff(d.kernel().value, cf::Matrix<double>(k0 - 0.5 * d.kernel().grad)) == 0.0);
  REQUIRE(d.bias().value(0, 1) == -1.0);
  vars.zero_grad();
  REQUIRE(d.kernel().grad.isZero(0));
}

TEST_CASE("Adam refuses a variable list that does not match its slots", "[optimizers][errors]") {
  cf::Rng rng(10);
  cf::Dense<float> a(3, 2, rng), b(3, 4, rng, "other");
  cf::VariableList<float> va, vb, vab;
  va.add(a);
  vb.add(b);
  vab.add(a).add(b);
  cf::AdamOptimizer<float> adam;
  adam.apply_gradients(va);
  REQUIRE_THROWS_WITH(adam.apply_gradients(vb), Contains("'other/kernel'"));
  REQUIRE_THROWS_WITH(adam.apply_gradients(vab), Contains("slots for 2 variables, given 4"));
  REQUIRE_THROWS_AS(cf::AdamOptimizer<float>(0.001f, 1.0f), cf::ValueError);
}

TEMPLATE_TEST_CASE("Adam's state as named tensors: export, import into a reordered list, continue bitwise",
                   "[optimizers][adam]", float, double) {
  using T = TestType;
  Vars<T> a;
  cf::AdamOptimizer<T> adam_a(0.05, 0.8, 0.99, 1e-6);
  for (int step = 0; step < 3; ++step) {
    a.set_gradients(step);
    adam_a.apply_gradients(a.list);
  }
  const cf::OptimizerState<T> s = adam_a.export_state(a.list);
  CHECK(s.kind == "adam");
  CHECK(s.counters == std::map<std::string, long long>{{"step", 3}});
  REQUIRE(s.scalars.size() == 6);
  CHECK(bits(s.scalars.at("learning_rate")) == bits(T(0.05)));
  CHECK(bits(s.scalars.at("beta1")) == bits(T(0.8)));
  CHECK(bits(s.scalars.at("beta1_power")) == bits(adam_a.beta1_power()));
  CHECK(bits(s.scalars.at("beta2_power")) == bits(T(0.99) * T(0.99) * T(0.99) * T(0.99)));
  REQUIRE(s.slots.size() == 6);
  REQUIRE(s.find_slot("b", "m") != nullptr);
  CHECK(s.find_slot("b", "m")->shape == std::vector<Index>{3});
  CHECK(bitwise_equal(s.find_slot("b", "m")->value, adam_a.m_slots()[1]));
  CHECK(bitwise_equal(s.find_slot("w", "v")->value, adam_a.v_slots()[0]));
  CHECK(s.find_slot("w", "x") == nullptr);

  // Into a list of the same variables in another order, through the base interface.
  Vars<T> b(/*reversed=*/true);
  for (cf::Parameter<T>* p : {&b.w, &b.b, &b.s}) p->value.setConstant(T(7));
  b.w.value = a.w.value;
  b.b.value = a.b.value;
  b.s.value = a.s.value;
  cf::AdamOptimizer<T> adam_b(0.5);
  cf::Optimizer<T>& opt = adam_b;
  opt.import_state(s, b.list);
  CHECK(opt.learning_rate() == T(0.05));
  CHECK(adam_b.step() == 3);
  CHECK(bitwise_equal(adam_b.m_slots()[0], adam_a.m_slots()[2]));  // s is first in b's list
  CHECK(same_state(adam_b.export_state(b.list), s));
  for (int step = 3; step < 6; ++step) {
    a.set_gradients(step);
    adam_a.apply_gradients(a.list);
    b.set_gradients(step);
    opt.apply_gradients(b.list);
  }
  CHECK(a.same_values(b));
  CHECK(same_state(adam_a.export_state(a.list), adam_b.export_state(b.list)));

  // The test can fail: a fresh optimizer does something else.
  Vars<T> c;
  c.w.value = b.w.value;
  cf::AdamOptimizer<T> fresh(0.05, 0.8, 0.99, 1e-6);
  c.set_gradients(6);
  fresh.apply_gradients(c.list);
  a.set_gradients(6);
  adam_a.apply_gradients(a.list);
  CHECK_FALSE(bitwise_equal(c.w.value, a.w.value));
}

TEMPLATE_TEST_CASE("an Adam state that does not fit is refused with every problem, and changes nothing",
                   "[optimizers][adam]", float, double) {
  using T = TestType;
  Vars<T> v;
  cf::AdamOptimizer<T> src(0.01);
  v.set_gradients(0);
  src.apply_gradients(v.list);
  const cf::OptimizerState<T> good = src.export_state(v.list);
  cf::AdamOptimizer<T> target(0.3);
  const cf::OptimizerState<T> before = target.export_state(v.list);
  const auto refused = [&](const cf::OptimizerState<T>& s, const std::string& what) {
    CHECK_THAT(message_of<cf::ValueError>([&] { target.import_state(s, v.list); }),
               Contains("AdamOptimizer::import_state: the state does not fit") && Contains(what));
    CHECK_THAT(message_of<cf::ValueError>([&] { target.check_state(s, v.list); }),
               Contains("AdamOptimizer::check_state: the state does not fit") && Contains(what));
    CHECK(same_state(target.export_state(v.list), before));
    CHECK(target.learning_rate() == T(0.3));
  };
  REQUIRE(target.state_problems(good, v.list).empty());

  auto s = good;
  s.kind = "gradient_descent";
  refused(s, ": the state is of kind 'gradient_descent', not 'adam'");
  s = good;
  s.scalars.erase("beta2");
  s.scalars["momentum"] = T(0.9);
  s.scalars["beta1"] = T(1);
  s.scalars["epsilon"] = std::numeric_limits<T>::quiet_NaN();
  refused(s,
          "(4 problems):\n  the scalar 'beta2' is missing\n  the scalar 'beta1' = 1 is not in [0, 1)\n"
          "  the scalar 'epsilon' = nan is not finite and >= 0\n  unknown scalar 'momentum'");
  s = good;
  s.counters["step"] = -1;
  refused(s, ": the counter 'step' = -1 is negative");
  s = good;
  s.counters.clear();
  s.counters["global_step"] = 1;
  refused(s, "the counter 'step' is missing\n  unknown counter 'global_step'");
  s = good;
  s.slots.erase({"b", "v"});
  s.slots[{"x", "m"}] = cf::OptimizerSlot<T>{{1}, cf::Matrix<T>::Zero(1, 1)};
  s.slots[{"w", "Adam"}] = cf::OptimizerSlot<T>{{2, 3}, cf::Matrix<T>::Zero(2, 3)};
  s.slots[{"s", "m"}].shape = {1, 1};
  refused(s,
          "(4 problems):\n  the slot 'v' of 'b' is missing\n  the slot 'm' of 's' is [1, 1] (1x1), the variable "
          "[1] (1x1)\n  unknown slot 'Adam' of 'w'\n  the slot 'm' of 'x': no variable of that name in the list");
  s = good;
  s.slots[{"w", "v"}].value(1, 2) = T(-0.5);
  refused(s, ": the slot 'v' of 'w': v[5] = -0.5 is negative");
  s = good;
  s.slots.clear();
  refused(s, ": no slots, but 1 steps taken: Adam has m and v slots after its first step");

  // Accepted edge cases: NaN in v (training can produce it), no slots before the first step.
  s = good;
  s.slots[{"w", "v"}].value(0, 0) = std::numeric_limits<T>::quiet_NaN();
  CHECK(target.state_problems(s, v.list).empty());
  s = good;
  s.slots.clear();
  s.counters["step"] = 0;
  target.import_state(s, v.list);
  CHECK(target.m_slots().empty());
  CHECK(target.step() == 0);
}

TEMPLATE_TEST_CASE("GradientDescent's state is its learning rate", "[optimizers]", float, double) {
  using T = TestType;
  Vars<T> v;
  cf::GradientDescentOptimizer<T> gd(0.25);
  const cf::OptimizerState<T> s = gd.export_state(v.list);
  CHECK(s.kind == "gradient_descent");
  CHECK(s.scalars.size() == 1);
  CHECK(bits(s.scalars.at("learning_rate")) == bits(T(0.25)));
  CHECK(s.counters.empty());
  CHECK(s.slots.empty());
  cf::GradientDescentOptimizer<T> other(1);
  other.import_state(s, v.list);
  CHECK(other.learning_rate() == T(0.25));
  auto bad = s;
  bad.scalars["learning_rate"] = -std::numeric_limits<T>::infinity();
  bad.counters["step"] = 1;
  CHECK_THAT(message_of<cf::ValueError>([&] { other.import_state(bad, v.list); }),
             Equals("GradientDescentOptimizer::import_state: the state does not fit (2 problems):\n  the scalar "
                    "'learning_rate' = -inf is not finite and >= 0\n  unknown counter 'step'"));
  cf::AdamOptimizer<T> adam;
  CHECK_THAT(message_of<cf::ValueError>([&] { other.import_state(adam.export_state(v.list), v.list); }),
             Equals("GradientDescentOptimizer::import_state: the state does not fit: the state is of kind 'adam', "
                    "not 'gradient_descent'"));
  CHECK(other.learning_rate() == T(0.25));
}

TEMPLATE_TEST_CASE("a missing or misshapen gradient is a ShapeError naming the variable, and changes nothing",
                   "[optimizers]", float, double) {
  using T = TestType;
  cf::Parameter<T> w(2, 2), no_grad;  // no_grad: a Parameter made without a gradient
  no_grad.value = cf::Matrix<T>::Constant(2, 3, T(1));
  no_grad.shape = {2, 3};
  w.grad.setConstant(T(0.5));
  cf::VariableList<T> vars;
  vars.add_one("w", w).add_one("head/kernel", no_grad);
  // add_one gives a variable without a gradient a zero one; a gradient lost after that is the
  // optimizer's to catch.
  REQUIRE(no_grad.grad.rows() == 2);
  REQUIRE(no_grad.grad.cols() == 3);
  CHECK((no_grad.grad.array() == T(0)).all());
  no_grad.grad.resize(0, 0);
  const cf::Matrix<T> w0 = w.value, k0 = no_grad.value;

  cf::AdamOptimizer<T> adam;
  CHECK_THAT(message_of<cf::ShapeError>([&] { adam.apply_gradients(vars); }),
             Equals("AdamOptimizer::apply_gradients: variable 1 ('head/kernel') has no gradient: its grad is 0x0, its "
                    "value 2x3 (a Parameter made without a gradient?)"));
  cf::GradientDescentOptimizer<T> gd(0.1);
  CHECK_THAT(message_of<cf::ShapeError>([&] { gd.apply_gradients(vars); }),
             Contains("GradientDescentOptimizer::apply_gradients: variable 1 ('head/kernel') has no gradient"));

  no_grad.grad = cf::Matrix<T>::Zero(3, 2);
  CHECK_THAT(message_of<cf::ShapeError>([&] { adam.apply_gradients(vars); }),
             Equals("AdamOptimizer::apply_gradients: variable 1 ('head/kernel') has a gradient of 3x2 for a value of "
                    "2x3"));
  CHECK_THAT(message_of<cf::ShapeError>([&] { gd.apply_gradients(vars); }), Contains("has a gradient of 3x2"));
  vars[1].grad = nullptr;
  CHECK_THAT(
      message_of<cf::ShapeError>([&] { adam.apply_gradients(vars); }),
      Equals("AdamOptimizer::apply_gradients: variable 1 ('head/kernel') has no gradient (a null grad pointer)"));

  // Nothing changed: values, step, no slots created.
  CHECK(bitwise_equal(w.value, w0));
  CHECK(bitwise_equal(no_grad.value, k0));
  CHECK(adam.step() == 0);
  CHECK(adam.m_slots().empty());
  CHECK(adam.last_lr_t() == T(0));
}

TEST_CASE("Adam's slots belong to the variables they were made for", "[optimizers][adam]") {
  Vars<float> a;
  cf::AdamOptimizer<float> adam;
  a.set_gradients(0);
  adam.apply_gradients(a.list);
  cf::Parameter<float> w(2, 3), b(3), s(1);  // the same shapes under other names
  cf::VariableList<float> other;
  other.add_one("w2", w).add_one("b", b).add_one("s", s);
  CHECK_THAT(message_of<cf::ShapeError>([&] { adam.apply_gradients(other); }),
             Equals("AdamOptimizer::apply_gradients: variable 0 is 'w2', its slots were made for 'w' (the list's "
                    "variables or their order changed)"));
  CHECK_THAT(message_of<cf::ValueError>([&] { adam.export_state(other); }),
             Contains("AdamOptimizer::export_state: variable 0 of the list is 'w2' [2, 3], the optimizer's slots 0 "
                      "were made for 'w' (2x3)"));
  cf::VariableList<float> fewer;
  fewer.add_one("w", a.w);
  CHECK_THAT(message_of<cf::ValueError>([&] { adam.export_state(fewer); }),
             Equals("AdamOptimizer::export_state: the optimizer holds slots for 3 variables, the list has 1"));
  CHECK(adam.step() == 1);
}

TEST_CASE("hyper-parameters that are NaN, infinite, negative or out of range are refused", "[optimizers]") {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  using Adam = cf::AdamOptimizer<float>;
  using GD = cf::GradientDescentOptimizer<float>;
  CHECK_THAT(message_of<cf::ValueError>([&] { Adam a(nan); }),
             Equals("AdamOptimizer: the learning rate must be finite and >= 0, given nan"));
  CHECK_THAT(message_of<cf::ValueError>([&] { Adam a(inf); }),
             Contains("the learning rate must be finite and >= 0, given inf"));
  CHECK_THAT(message_of<cf::ValueError>([&] { Adam a(-0.001); }), Contains("given -0.001"));
  CHECK_THAT(message_of<cf::ValueError>([&] { Adam a(1e300); }),
             Equals("AdamOptimizer: the learning rate must be finite and >= 0, given 1e+300 (too large for this scalar "
                    "type)"));
  CHECK_THAT(message_of<cf::ValueError>([&] { Adam a(0.001, 0.9, 0.999, nan); }),
             Equals("AdamOptimizer: epsilon must be finite and >= 0, given nan"));
  CHECK_THAT(message_of<cf::ValueError>([&] { Adam a(0.001, 0.9, 0.999, -inf); }), Contains("epsilon must be finite"));
  CHECK_THAT(message_of<cf::ValueError>([&] { Adam a(0.001, nan); }),
             Equals("AdamOptimizer: beta1 must be in [0, 1), given nan"));
  CHECK_THAT(message_of<cf::ValueError>([&] { Adam a(0.001, 0.9, 1); }),
             Equals("AdamOptimizer: beta2 must be in [0, 1), given 1"));
  CHECK_THAT(message_of<cf::ValueError>([&] { GD g(nan); }),
             Equals("GradientDescentOptimizer: the learning rate must be finite and >= 0, given nan"));
  CHECK_THAT(message_of<cf::ValueError>([&] { GD g(-1); }), Contains("given -1"));
  CHECK_THAT(message_of<cf::ValueError>([&] { GD g(-inf); }), Contains("given -inf"));

  Adam adam(0.001);
  GD gd(0.5);
  for (cf::Optimizer<float>* opt :
       {static_cast<cf::Optimizer<float>*>(&adam), static_cast<cf::Optimizer<float>*>(&gd)}) {
    const float before = opt->learning_rate();
    CHECK_THAT(message_of<cf::ValueError>([&] { opt->set_learning_rate(nan); }),
               Contains("::set_learning_rate: the learning rate must be finite and >= 0, given nan"));
    CHECK_THAT(message_of<cf::ValueError>([&] { opt->set_learning_rate(-0.5); }), Contains("given -0.5"));
    CHECK_THAT(message_of<cf::ValueError>([&] { opt->set_learning_rate(inf); }), Contains("given inf"));
    CHECK(opt->learning_rate() == before);
    opt->set_learning_rate(0);  // 0 is a valid rate (a frozen step)
    CHECK(opt->learning_rate() == 0.0f);
  }
  CHECK(adam.kind() == "adam");
  CHECK(gd.kind() == "gradient_descent");
}

// Arguments of any arithmetic type, without an implicit conversion (a double literal into a float
// optimizer used to warn under -Wfloat-conversion).
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic error "-Wconversion"
#pragma GCC diagnostic error "-Wfloat-conversion"
#endif
TEST_CASE("optimizer arguments of any arithmetic type convert to T", "[optimizers]") {
  cf::AdamOptimizer<float> a(0.001);  // double
  CHECK(a.learning_rate() == 0.001f);
  CHECK(a.epsilon() == 1e-8f);
  cf::AdamOptimizer<float> b(1, 0.5, 0.75L, 0);  // int, double, long double, int
  CHECK(b.learning_rate() == 1.0f);
  CHECK(b.beta2() == 0.75f);
  CHECK(b.epsilon() == 0.0f);
  cf::AdamOptimizer<double> c(0.001f);  // a float widens exactly
  CHECK(c.learning_rate() == static_cast<double>(0.001f));
  cf::GradientDescentOptimizer<float> g(0.1);
  CHECK(g.learning_rate() == 0.1f);
  g.set_learning_rate(2);
  a.set_learning_rate(0.5);
  CHECK(g.learning_rate() == 2.0f);
  CHECK(a.learning_rate() == 0.5f);
  cf::AdamOptimizer<double> d;  // TF's defaults
  CHECK(d.learning_rate() == 0.001);
  CHECK(d.beta1() == 0.9);
  CHECK(d.beta2() == 0.999);
  CHECK(d.epsilon() == 1e-8);
}
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

TEMPLATE_TEST_CASE("last_lr_t is the step size of Adam's last step", "[optimizers][adam]", float, double) {
  using T = TestType;
  Vars<T> v;
  cf::AdamOptimizer<T> adam(0.1, 0.8, 0.9);
  CHECK(adam.last_lr_t() == T(0));
  T p1 = T(0.8), p2 = T(0.9);
  for (int step = 0; step < 4; ++step) {
    v.set_gradients(step);
    adam.apply_gradients(v.list);
    const T expected = T(0.1) * std::sqrt(T(1) - p2) / (T(1) - p1);  // lr * sqrt(1 - beta2^t) / (1 - beta1^t)
    CHECK(bits(adam.last_lr_t()) == bits(expected));
    p1 *= T(0.8);
    p2 *= T(0.9);
  }
  CHECK(adam.last_lr_t() != T(0));
  // Step 1 by hand: 0.1 * sqrt(0.1) / 0.2.
  cf::AdamOptimizer<double> one(0.1, 0.8, 0.9);
  Vars<double> w;
  w.set_gradients(0);
  one.apply_gradients(w.list);
  CHECK(one.last_lr_t() == Approx(0.1 * std::sqrt(0.1) / 0.2).epsilon(1e-15));
  // Importing a state starts over: this optimizer has not stepped since.
  one.import_state(one.export_state(w.list), w.list);
  CHECK(one.last_lr_t() == 0.0);
}

}  // namespace test_optimizers
