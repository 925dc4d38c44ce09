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
root.Subcommands.Add(KeysVerb.Create());
root.Subcommands.Add(PackVerb.Create());
root.Subcommands.Add(SignVerb.Create());
root.Subcommands.Add(VerifyVerb.Create());
root.Subcommands.Add(PublishVerb.Create());
root.Subcommands.Add(ServeVerb.Create());
return Cli.Invoke(root, args);
