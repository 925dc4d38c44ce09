using System.CommandLine;
using OnDevice.Cli;
using OnDevice.Cli.Verbs;

var root = new RootCommand("OnDevice: measure, shrink, run and ship models for phones, watches and small boards.");
root.Subcommands.Add(DemoVerb.Create());
root.Subcommands.Add(InspectVerb.Create());
root.Subcommands.Add(SamplesVerb.Create());
root.Subcommands.Add(RunVerb.Create());
root.Subcommands.Add(BenchVerb.Create());
root.Subcommands.Add(BudgetVerb.Create());
root.Subcommands.Add(DevicesVerb.Create());
root.Subcommands.Add(QuantizeVerb.Create());
root.Subcommands.Add(PalettizeVerb.Create());
root.Subcommands.Add(PruneVerb.Create());
return Cli.Invoke(root, args);
