using OnDevice.Core;

namespace OnDevice.Core.Tests;

public class GraphTests
{
    internal static Model Chain(params Node[] nodes)
    {
        var g = new Graph { Name = "g" };
        g.Inputs.Add(ValueInfo.Tensor("x", DType.Float32, Shape.Of(1, 4)));
        g.Nodes.AddRange(nodes);
        g.Outputs.Add(ValueInfo.Tensor(nodes[^1].Outputs[0], DType.Float32, null));
        var m = new Model(g);
        m.OpsetImports.Add(new OpsetImport("", 17));
        return m;
    }

    [Fact]
    public void TopologicalOrder_PutsProducersFirst_AndKeepsFileOrderOtherwise()
    {
        var c = new Node("Relu", ["b"], ["c"], "C");
        var a = new Node("Relu", ["x"], ["a"], "A");
        var b = new Node("Relu", ["a"], ["b"], "B");
        var d = new Node("Relu", ["x"], ["d"], "D");
        var m = Chain(c, a, b, d);
        var order = GraphAlgorithms.TopologicalOrder(m.Graph).Select(n => n.Name).ToList();
        Assert.Equal(["A", "B", "C", "D"], order);
    }

    [Fact]
    public void TopologicalOrder_NamesTheNodesOfACycle()
    {
        var m = Chain(new Node("Add", ["x", "q"], ["p"], "P"), new Node("Relu", ["p"], ["q"], "Q"));
        var e = Assert.Throws<GraphCycleException>(() => GraphAlgorithms.TopologicalOrder(m.Graph));
        Assert.Contains("'P' (Add)", e.Message);
        Assert.Contains("'Q' (Relu)", e.Message);
    }

    [Fact]
    public void SubgraphCaptures_AreImplicitInputs_AndOrderTheOuterGraph()
    {
        var then = new Graph { Name = "then" };
        then.Nodes.Add(new Node("Identity", ["late"], ["t_out"]));
        then.Outputs.Add(new ValueInfo("t_out"));
        var other = new Graph { Name = "else" };
        other.Nodes.Add(new Node("Identity", ["x"], ["e_out"]));
        other.Outputs.Add(new ValueInfo("e_out"));
        var iff = new Node("If", ["cond"], ["y"], "If").With(Attribute.Of("then_branch", then)).With(Attribute.Of("else_branch", other));
        var late = new Node("Relu", ["x"], ["late"], "Late");
        var cond = new Node("Constant", [], ["cond"], "Cond").With(Attribute.Of("value", Tensor.Scalar(true)));
        var m = Chain(iff, late, cond);
        m.Graph.Outputs[0] = new ValueInfo("y");

        Assert.Equal(["late", "x"], GraphAlgorithms.ImplicitInputs(iff));
        var order = GraphAlgorithms.TopologicalOrder(m.Graph).Select(n => n.Name).ToList();
        Assert.True(order.IndexOf("Late") < order.IndexOf("If"));
        var index = new GraphIndex(m.Graph);
        Assert.Contains(index.Consumers("late"), u => u.Node == iff && u.InputIndex == -1);
        Assert.Same(late, index.Producer("late"));
        Assert.DoesNotContain(ModelValidator.Validate(m), i => i.Severity == Severity.Error);
    }

    [Fact]
    public void ConstantLifting_TurnsConstantNodesIntoInitializers_InSubgraphsToo()
    {
        var body = new Graph { Name = "body" };
        body.Nodes.Add(new Node("Constant", [], ["k"]).With(Attribute.Of("value_floats", new[] { 1f, 2f })));
        body.Nodes.Add(new Node("Add", ["x", "k"], ["o"]));
        body.Outputs.Add(new ValueInfo("o"));
        var iff = new Node("If", ["c"], ["y"]).With(Attribute.Of("then_branch", body)).With(Attribute.Of("else_branch", body));
        var m = Chain(new Node("Constant", [], ["c"]).With(Attribute.Of("value", Tensor.Scalar(true))), iff);
        long before = ModelSummary.Of(m).Parameters;
        int lifted = ConstantLifting.Lift(m.Graph);
        Assert.Equal(2, lifted); // c, and k in the body (reached through both branches, lifted once)
        Assert.True(m.Graph.Initializers.ContainsKey("c"));
        Assert.Equal(new[] { 1f, 2f }, body.Initializers["k"].ToFloatArray());
        Assert.Single(body.Nodes);
        Assert.Equal(before, ModelSummary.Of(m).Parameters);
    }
}
