using OnDevice.TestSupport;

namespace OnDevice.Fleet.Tests;

/// <summary>Tests sharing one real PostgreSQL (<see cref="PostgresFixture"/>).</summary>
[CollectionDefinition("postgres")]
public sealed class PostgresCollection : ICollectionFixture<PostgresFixture>;
