namespace CdsHooks.Engine.Knowledge;

/// <summary>A product of an RxNorm release and one of its ingredients (a row of <c>cards/source/rxnorm_codes.csv</c>).</summary>
public sealed record RxNormProduct(string Rxcui, string Tty, string Name, string IngredientRxcui, string IngredientName);

/// <summary>
/// Reads the products of given ingredients from an RxNorm release (<c>RXNCONSO.RRF</c>, <c>RXNREL.RRF</c>, which a
/// site downloads itself), so that the value sets can be refreshed with current product codes. Only SAB=RXNORM
/// concepts count. In RXNREL a row says that RXCUI2 has the relationship RELA to RXCUI1. Products resolve to
/// ingredients as: SCD consists_of SCDC, SCDC has_ingredient IN; SBD tradename_of SCD; GPCK and BPCK contain SCD or SBD.
/// </summary>
public static class RxNormImporter
{
    private static readonly HashSet<string> ProductTypes = ["SCD", "SBD", "GPCK", "BPCK"];
    private static readonly HashSet<string> Relations = ["has_ingredient", "consists_of", "tradename_of", "contains"];

    public static IReadOnlyList<RxNormProduct> Import(TextReader conso, TextReader rel, IReadOnlySet<string> ingredients, IProgress<long>? progress = null)
    {
        // RXNCONSO: RXCUI|LAT|TS|LUI|STT|SUI|ISPREF|RXAUI|SAUI|SCUI|SDUI|SAB|TTY|CODE|STR|SRL|SUPPRESS|CVF|
        var names = new Dictionary<string, (string Tty, string Name)>(StringComparer.Ordinal);
        long lines = 0;
        for (var line = conso.ReadLine(); line is not null; line = conso.ReadLine())
        {
            if (++lines % 10_000 == 0) progress?.Report(lines);
            var f = line.Split('|');
            if (f.Length < 17 || f[11] != "RXNORM" || f[16] is "O" or "Y") continue;
            if (f[12] is "IN" or "SCDC" || ProductTypes.Contains(f[12])) names.TryAdd(f[0], (f[12], f[14]));
        }

        // RXNREL: RXCUI1|RXAUI1|STYPE1|REL|RXCUI2|RXAUI2|STYPE2|RELA|RUI|SRUI|SAB|SL|DIR|RG|SUPPRESS|CVF|
        var edges = new Dictionary<(string From, string Rela), List<string>>();
        for (var line = rel.ReadLine(); line is not null; line = rel.ReadLine())
        {
            if (++lines % 10_000 == 0) progress?.Report(lines);
            var f = line.Split('|');
            if (f.Length < 11 || f[10] != "RXNORM" || !Relations.Contains(f[7]) || f[0].Length == 0 || f[4].Length == 0) continue;
            var key = (f[4], f[7]);
            if (!edges.TryGetValue(key, out var targets)) edges[key] = targets = [];
            targets.Add(f[0]);
        }

        progress?.Report(lines);
        IEnumerable<string> Related(string from, string rela) => edges.TryGetValue((from, rela), out var t) ? t : [];

        var memo = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
        HashSet<string> IngredientsOf(string rxcui)
        {
            if (memo.TryGetValue(rxcui, out var known)) return known;
            memo[rxcui] = []; // guards against cycles
            var tty = names.TryGetValue(rxcui, out var n) ? n.Tty : "";
            var result = tty switch
            {
                "IN" => [rxcui],
                "SCDC" => [.. Related(rxcui, "has_ingredient").Where(i => names.TryGetValue(i, out var x) && x.Tty == "IN")],
                "SCD" => Related(rxcui, "consists_of").SelectMany(IngredientsOf).ToHashSet(StringComparer.Ordinal),
                "SBD" => Related(rxcui, "tradename_of").SelectMany(IngredientsOf).ToHashSet(StringComparer.Ordinal),
                "GPCK" or "BPCK" => Related(rxcui, "contains").SelectMany(IngredientsOf).ToHashSet(StringComparer.Ordinal),
                _ => new HashSet<string>(StringComparer.Ordinal),
            };
            memo[rxcui] = result;
            return result;
        }

        return [.. names.Where(n => ProductTypes.Contains(n.Value.Tty))
            .SelectMany(n => IngredientsOf(n.Key).Where(ingredients.Contains)
                .Select(i => new RxNormProduct(n.Key, n.Value.Tty, n.Value.Name, i, names[i].Name)))
            .OrderBy(p => p.IngredientName, StringComparer.Ordinal).ThenBy(p => p.Name, StringComparer.Ordinal)];
    }
}
