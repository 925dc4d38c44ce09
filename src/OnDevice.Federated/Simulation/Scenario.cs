using OnDevice.Federated.Data;
using OnDevice.Federated.Privacy;
using OnDevice.Federated.Training;

namespace OnDevice.Federated.Simulation;

/// <summary>A federated population built from Fashion-MNIST: non-IID users (2–3 classes each) and the global test set.</summary>
public sealed record FashionMnistScenario(IReadOnlyList<FederatedClient> Clients, Dataset Test, int Dimension)
{
    /// <summary>
    /// Splits the 60,000 training images among <paramref name="users"/> users (each keeps <paramref name="localTestFraction"/>
    /// of its own examples as a local test split); <paramref name="examplesPerUser"/> caps each user's share (0 = no cap).
    /// </summary>
    public static FashionMnistScenario Build(int users, int seed, double localTestFraction = 0.2, int examplesPerUser = 0,
        int minClasses = 2, int maxClasses = 3, double deviceEpsilonBudget = 0, double delta = 1e-5, string folder = FashionMnist.DebianFolder, int testExamples = 0)
    {
        if (users < 1) throw new FederatedException($"users must be at least 1, got {users}");
        if (!(localTestFraction >= 0 && localTestFraction < 1)) throw new FederatedException("the local test fraction must be in [0, 1)");
        var train = FashionMnist.Load(true, folder);
        var test = FashionMnist.Load(false, folder);
        if (testExamples > 0 && testExamples < test.Count) test = test.Subset(Enumerable.Range(0, testExamples).ToArray());
        var parts = FashionMnist.SplitNonIid(train, users, minClasses, maxClasses, seed);
        var rng = new Random(seed + 1);
        var clients = new List<FederatedClient>(users);
        for (int u = 0; u < users; u++)
        {
            var idx = parts[u].ToArray();
            rng.Shuffle(idx); // the split lists a user's examples class by class; mix them before capping and holding out
            if (examplesPerUser > 0 && idx.Length > examplesPerUser) idx = idx[..examplesPerUser];
            int nTest = (int)Math.Round(idx.Length * localTestFraction);
            var trainIdx = idx[nTest..];
            var testIdx = idx[..nTest];
            var speed = Math.Exp(0.5 * Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble()));
            clients.Add(new FederatedClient((uint)(u + 1), train.Subset(trainIdx), nTest > 0 ? train.Subset(testIdx) : null,
                deviceEpsilonBudget > 0 ? new PrivacyLedger(deviceEpsilonBudget, delta) : null, speed));
        }
        return new FashionMnistScenario(clients, test, train.Dimension);
    }
}
