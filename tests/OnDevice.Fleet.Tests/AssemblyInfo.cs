// The fleet simulations are timing-sensitive (real servers, hundreds of devices, guards waiting for data): run the
// test classes of this assembly one after another rather than competing for the same cores.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
