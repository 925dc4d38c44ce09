namespace OnDevice.Federated;

/// <summary>Bad input to a federated-learning or privacy API: a clear message, thrown before any work.</summary>
public class FederatedException(string message) : Exception(message);

/// <summary>A client message that is malformed, oversized or does not verify; the round goes on without it.</summary>
public sealed class ProtocolException(string message) : FederatedException(message);

/// <summary>A device would exceed its privacy budget by taking part.</summary>
public sealed class PrivacyBudgetExceededException(string message) : FederatedException(message);
