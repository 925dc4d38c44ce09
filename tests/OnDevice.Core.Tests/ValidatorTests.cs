using OnDevice.Core;

namespace OnDevice.Core.Tests;

public class ValidatorTests
{
    private static List<string> Errors(Model m) =>
        ModelValidator.Validate(m).Where(i => i.Severity == Severity.Error).Select(i => i.ToString()).ToList();

    [Fact]
    public void WellFormedGraph_HasNoErrors()
    {
        var m = GraphTests.Chain(new Node("Relu", ["x"], ["a"], "A"), new Node("Sigmoid", ["a"], ["b"], "B"));
        Assert.Empty(Errors(m));
        ModelValidator.ThrowIfInvalid(m);
    }

    [Fact]
    public void DanglingInput_NamesNodeSlotAndValue()
    {
        var m = GraphTests.Chain(new Node("Add", ["x", "missing"], ["a"], "Add_1"));
        var e = Assert.Single(Errors(m));
        Assert.Equal("error: graph 'g': node 'Add_1' (Add) input 1 'missing' is not defined: no node, initializer or graph input produces it", e);
        var ex = Assert.Throws<ModelValidationException>(() => ModelValidator.ThrowIfInvalid(m));
        Assert.Single(ex.Issues);
    }

    [Fact]
    public void ValueDefinedTwice_IsReported()
    {
        var m = GraphTests.Chain(new Node("Relu", ["x"], ["a"], "A"), new Node("Sigmoid", ["x"], ["a"], "B"));
        Assert.Contains(Errors(m), e => e.Contains("value 'a' is defined twice: by node 'A' (Relu) and by node 'B' (Sigmoid)"));
    }

    [Fact]
    public void Cycle_IsReported()
    {
        var m = GraphTests.Chain(new Node("Add", ["x", "q"], ["p"], "P"), new Node("Relu", ["p"], ["q"], "Q"));
        Assert.Contains(Errors(m), e => e.Contains("has a cycle"));
    }

    [Fact]
    public void OperandTypeMismatch_IsReported()
    {
        var m = GraphTests.Chain(new Node("Add", ["x", "k"], ["a"], "Add_1"));
        m.Graph.AddInitializer(Tensor.FromArray<long>([1, 2, 3, 4], [4], "k"));
        var e = Assert.Single(Errors(m));
        Assert.Contains("node 'Add_1' (Add): input 1 'k' is int64 but input 0 'x' is float32", e);
    }

    [Fact]
    public void TypeMismatchThroughPropagation_IsReported()
    {
        // Cast makes 'c' int32; adding it to a float32 value is a type error two nodes later.
        var m = GraphTests.Chain(
            new Node("Cast", ["x"], ["c"], "Cast_1").With(Attribute.Of("to", (long)DType.Int32)),
            new Node("Relu", ["c"], ["r"], "Relu_1"),
            new Node("Mul", ["r", "x"], ["out"], "Mul_1"));
        Assert.Contains(Errors(m), e => e.Contains("node 'Mul_1' (Mul): input 1 'x' is float32 but input 0 'r' is int32"));
    }

    [Fact]
    public void InitializerDisagreeingWithDeclaredInput_IsReported()
    {
        var m = GraphTests.Chain(new Node("Add", ["x", "w"], ["a"], "A"));
        m.Graph.Inputs.Add(ValueInfo.Tensor("w", DType.Float32, Shape.Of(4)));
        m.Graph.AddInitializer(Tensor.FromArray<float>([1, 2, 3], [3], "w"));
        Assert.Contains(Errors(m), e => e.Contains("graph input 'w' is declared with shape [4] but its initializer has shape [3]"));
    }

    [Fact]
    public void UndefinedGraphOutput_AndUnimportedDomain_AreReported()
    {
        var m = GraphTests.Chain(new Node("MatMulNBits", ["x"], ["a"], "Q") { Domain = "com.microsoft" });
        m.Graph.Outputs.Add(new ValueInfo("nowhere"));
        var errors = Errors(m);
        Assert.Contains(errors, e => e.Contains("uses domain 'com.microsoft', which the model does not import"));
        Assert.Contains(errors, e => e.Contains("graph output 'nowhere' is not produced"));
    }

    [Fact]
    public void SubgraphErrors_CarryTheirPath()
    {
        var body = new Graph { Name = "then" };
        body.Nodes.Add(new Node("Identity", ["ghost"], ["o"], "Inner"));
        body.Outputs.Add(new ValueInfo("o"));
        var iff = new Node("If", ["x"], ["y"], "If_0").With(Attribute.Of("then_branch", body)).With(Attribute.Of("else_branch", body));
        var m = GraphTests.Chain(iff);
        var errors = ModelValidator.Validate(m).Where(i => i.Severity == Severity.Error).ToList();
        Assert.Contains(errors, e => e.GraphPath == "g/'If_0' (If).then_branch" && e.Message.Contains("'ghost' is not defined"));
    }
}
