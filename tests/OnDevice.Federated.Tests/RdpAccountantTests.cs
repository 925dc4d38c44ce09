using OnDevice.Federated;
using OnDevice.Federated.Privacy;

namespace OnDevice.Federated.Tests;

public class RdpAccountantTests
{
    // The orders of the TF Privacy MNIST tutorial and Opacus' RDPAccountant.DEFAULT_ALPHAS.
    private static readonly double[] TutorialOrders = Enumerable.Range(1, 99).Select(x => 1 + x / 10.0).Concat(Enumerable.Range(12, 52).Select(x => (double)x)).ToArray();

    [Theory]
    [InlineData(0.0, 1.0)]
    [InlineData(0.5, 0.4795001221869535)]
    [InlineData(1.0, 0.15729920705028513)]
    [InlineData(2.0, 0.004677734981047266)]
    [InlineData(3.0, 2.209049699858544e-05)]
    [InlineData(6.0, 2.1519736712498913e-17)]
    [InlineData(-1.0, 1.8427007929497148)]
    public void Erfc_matches_reference_values(double x, double expected) =>
        Assert.Equal(expected, SpecialFunctions.Erfc(x), expected * 1e-12);

    [Fact]
    public void LogErfc_far_tail_matches_asymptotic_expansion()
    {
        // erfc(x) ~ e^{−x²}/(x√π) (1 − 1/(2x²) + 3/(4x⁴)) for large x
        double x = 40;
        var asym = -x * x - Math.Log(x * Math.Sqrt(Math.PI)) + Math.Log(1 - 1 / (2 * x * x) + 3 / (4 * Math.Pow(x, 4)));
        Assert.Equal(asym, SpecialFunctions.LogErfc(x), 1e-9);
    }

    [Fact]
    public void Tf_privacy_mnist_tutorial_epsilon_classic_and_improved()
    {
        // σ = 1.1, batch 256 of 60,000, 60 epochs = 14,063 steps, δ = 1e-5: the TF Privacy MNIST tutorial reports ε ≈ 3.01.
        var acc = new RdpAccountant(TutorialOrders).Compose(256.0 / 60000, 1.1, 14063);
        var classic = acc.GetEpsilon(1e-5, RdpConversion.Classic);
        var improved = acc.GetEpsilon(1e-5, RdpConversion.Improved);
        Assert.Equal(3.01, classic.Epsilon, 0.006);
        Assert.Equal(2.60, improved.Epsilon, 0.006);
        Assert.True(improved.Epsilon < classic.Epsilon);
    }

    [Fact]
    public void Unsampled_gaussian_sigma_4_53_is_exactly_epsilon_1_at_delta_1e6()
    {
        // tensorflow/privacy tensorflow_privacy/privacy/analysis/rdp_accountant_test.py
        // test_get_privacy_spent_check_target_delta and google/differential-privacy
        // python/dp_accounting/dp_accounting/rdp/rdp_privacy_accountant_test.py test_compute_epsilon_delta_gaussian:
        // orders 1.000 … 99.999 step 0.001 (we start at 1.001: order 1 is excluded by the conversion anyway).
        var orders = Enumerable.Range(1001, 98999).Select(i => 0.001 * i).ToArray();
        var rdp = RdpAccountant.ComputeRdp(1, 4.530877117, 1, orders);
        Assert.Equal(1.0, RdpAccountant.ComputeEpsilon(orders, rdp, 1e-6).Epsilon, 1e-7);
    }

    [Fact]
    public void Poisson_sampled_gaussian_rdp_matches_tf_privacy_and_dp_accounting()
    {
        // tensorflow/privacy tensorflow_privacy/privacy/analysis/rdp_accountant_test.py test_compute_rdp_sequence:
        // q = 0.01, σ = 2.5, 50 steps → [0.00065, 0.001085, 0.00218075, 0.023846, 167.416307] (delta 1e-5). These are the
        // exact signed series of Mironov et al. 2019 that we implement.
        double[] orders = [1.5, 2.5, 5, 50, 100];
        double[] tf = [0.00065, 0.001085, 0.00218075, 0.023846, 167.416307];
        var rdp = RdpAccountant.ComputeRdp(0.01, 2.5, 50, orders);
        for (int i = 0; i < orders.Length; i++) Assert.True(Math.Abs(rdp[i] - tf[i]) <= 1e-5, $"order {orders[i]}: {rdp[i]} vs {tf[i]}");
        // google/differential-privacy python/dp_accounting/dp_accounting/rdp/rdp_privacy_accountant_test.py
        // test_compute_rdp_poisson_sampled_gaussian, same setting, rtol 1e-4. At integer orders it agrees with us; at
        // fractional orders newer dp_accounting sums |C(α,i)| (an upper bound), so its 1.5 and 2.5 figures are larger.
        double[] dpa = [6.70579741e-04, 1.08548710e-03, 2.18075656e-03, 2.38460375e-02, 1.67416308e02];
        for (int i = 2; i < orders.Length; i++)
            Assert.True(Math.Abs(rdp[i] - dpa[i]) <= 1e-4 * dpa[i], $"order {orders[i]}: {rdp[i]} vs {dpa[i]}");
        Assert.True(rdp[0] <= dpa[0] && rdp[1] <= dpa[1]);
    }

    [Fact]
    public void Rdp_scalar_and_unsampled_values_match_tf_privacy()
    {
        // tensorflow/privacy tensorflow_privacy/privacy/analysis/rdp_accountant_test.py:
        // test_compute_rdp_scalar (q 0.1, σ 2, 10 steps, order 5 → 0.07737), test_compute_rdp_no_sampling (q 1, σ 10, order 20 → 0.1),
        // test_compute_rdp_no_data (q 0 → 0).
        Assert.Equal(0.07737, RdpAccountant.ComputeRdp(0.1, 2, 10, [5])[0], 5e-6);
        Assert.Equal(0.1, RdpAccountant.ComputeRdp(1, 10, 1, [20])[0], 1e-15);
        Assert.Equal(0.0, RdpAccountant.ComputeRdp(0, 10, 1, [20])[0]);
    }

    [Fact]
    public void Pure_dp_rdp_converts_with_the_improved_bound_at_the_largest_order()
    {
        // google/differential-privacy .../rdp_privacy_accountant_test.py test_compute_epsilon_delta_pure_dp and
        // tensorflow/privacy rdp_accountant_test.py test_get_privacy_spent_check_target_delta: orders 2…32, RDP 1.1 → ε 1.32783806176 at order 32.
        var orders = Enumerable.Range(2, 31).Select(x => (double)x).ToArray();
        var g = RdpAccountant.ComputeEpsilon(orders, orders.Select(_ => 1.1).ToArray(), 1e-5);
        Assert.Equal(1.32783806176, g.Epsilon, 1e-9);
        Assert.Equal(32, g.Order);
    }

    [Fact]
    public void Heterogeneous_composition_matches_tf_privacy_classic_figure()
    {
        // tensorflow/privacy rdp_accountant_test.py test_check_composition: q 1e-4 σ 0.4 × 40,000 steps, then q 0.1 σ 2 × 100 steps;
        // the old (classic) conversion gives ε = 8.509656 at order 2.5 for δ = 1e-5; the improved one must not exceed it.
        double[] orders = [1.25, 1.5, 1.75, 2, 2.5, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 20, 24, 28, 32, 64, 256];
        var acc = new RdpAccountant(orders).Compose(1e-4, 0.4, 40000).Compose(0.1, 2, 100);
        var classic = acc.GetEpsilon(1e-5, RdpConversion.Classic);
        Assert.Equal(8.509656, classic.Epsilon, 1e-5);
        Assert.Equal(2.5, classic.Order);
        Assert.True(acc.GetEpsilon(1e-5).Epsilon <= 8.509656);
    }

    [Fact]
    public void Integer_and_fractional_paths_agree_near_integer_orders()
    {
        foreach (var (q, s) in new[] { (0.01, 1.0), (0.1, 2.0), (0.004, 1.1), (0.5, 5.0) })
            foreach (var a in new[] { 2, 3, 8, 32 })
            {
                var exact = RdpAccountant.ComputeRdpSingle(q, s, a);
                var frac = RdpAccountant.LogAFractional(q, s, a) / (a - 1);
                Assert.True(Math.Abs(exact - frac) <= 1e-8 * Math.Max(1e-12, exact) + 1e-14, $"q {q} σ {s} α {a}: {exact} vs {frac}");
            }
    }

    [Fact]
    public void Composition_is_additive_over_steps_and_accountants()
    {
        var a = new RdpAccountant().Compose(0.02, 1.3, 300);
        var b = new RdpAccountant().Compose(0.02, 1.3, 100).Compose(0.02, 1.3, 200);
        var c = new RdpAccountant().Compose(0.02, 1.3, 100);
        c.Compose(new RdpAccountant().Compose(0.02, 1.3, 200));
        for (int i = 0; i < a.Rdp.Count; i++)
        {
            Assert.Equal(a.Rdp[i], b.Rdp[i], Math.Abs(a.Rdp[i]) * 1e-12);
            Assert.Equal(a.Rdp[i], c.Rdp[i], Math.Abs(a.Rdp[i]) * 1e-12);
        }
    }

    [Theory]
    [InlineData(1.0, 0.01, 1000, 1e-5)]
    [InlineData(4.0, 256.0 / 60000, 14063, 1e-5)]
    [InlineData(8.0, 0.1, 50, 1e-5)]
    public void Noise_calibration_inverts_the_accountant(double eps, double q, long steps, double delta)
    {
        var sigma = RdpAccountant.CalibrateNoise(eps, q, steps, delta);
        Assert.True(RdpAccountant.Epsilon(sigma, q, steps, delta).Epsilon <= eps);
        Assert.True(RdpAccountant.Epsilon(sigma * 0.999, q, steps, delta).Epsilon > eps);
    }

    [Fact]
    public void Calibration_recovers_sigma_of_the_tutorial()
    {
        var sigma = RdpAccountant.CalibrateNoise(3.0100, 256.0 / 60000, 14063, 1e-5, RdpConversion.Classic);
        Assert.Equal(1.1, sigma, 0.01);
    }

    [Fact]
    public void Bad_input_is_rejected_with_a_clear_message()
    {
        Assert.Throws<FederatedException>(() => RdpAccountant.ComputeRdp(1.5, 1, 1, [2]));
        Assert.Throws<FederatedException>(() => RdpAccountant.ComputeRdp(0.1, -1, 1, [2]));
        Assert.Throws<FederatedException>(() => new RdpAccountant([0.5]));
        Assert.Throws<FederatedException>(() => new RdpAccountant().GetEpsilon(0));
        Assert.Throws<FederatedException>(() => RdpAccountant.CalibrateNoise(-1, 0.1, 10, 1e-5));
        Assert.Equal(double.PositiveInfinity, RdpAccountant.Epsilon(0, 0.1, 10, 1e-5).Epsilon);
    }
}
