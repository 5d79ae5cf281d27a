namespace HybridBatch.Integration.Configuration;

/// <summary>Amounts of bytes as Kubernetes quantities, read by the core's exact parser (the jobs file, <c>--resourceOverhead</c>).</summary>
public sealed class ByteQuantityTests
{
    [Theory]
    [InlineData(0L, "0")]
    [InlineData(512L << 20, "512Mi")]
    [InlineData(3L << 29, "1536Mi")]
    [InlineData(1000L, "1k")]
    [InlineData(1L, "1")]
    public void Byte_quantities_are_written_as_Kubernetes_writes_them_and_read_back(long bytes, string text)
    {
        Assert.Equal(text, ByteQuantity.Format(bytes));
        Assert.True(ByteQuantity.TryParse(text, out var read));
        Assert.Equal(bytes, read);
    }

    [Theory]
    [InlineData("500m", 1L)]
    [InlineData("1e3", 1000L)]
    [InlineData(" 2Ki ", 2048L)]
    public void Byte_quantities_round_up_to_whole_bytes(string text, long bytes)
    {
        Assert.True(ByteQuantity.TryParse(text, out var read));
        Assert.Equal(bytes, read);
    }

    [Theory]
    [InlineData("")]
    [InlineData("-1")]
    [InlineData("1 Gi")]
    [InlineData("2Ei")]
    public void What_is_not_an_amount_of_bytes_is_refused(string text) => Assert.False(ByteQuantity.TryParse(text, out _));
}
