using CdsHooks.Engine.Hooks;
using CdsHooks.Engine.Knowledge;
using CdsHooks.Engine.Patients;

namespace CdsHooks.Engine.Evaluation;

/// <summary>A rule that applies to this patient: the drugs on each side of the pair and the patient factors found.</summary>
public sealed record Finding(
    Rule Rule,
    IReadOnlyList<MatchedDrug> SideA,
    IReadOnlyList<MatchedDrug> SideB,
    IReadOnlyList<PatientFactor> Factors,
    int? Age,
    Indicator Indicator);

public sealed record MatchedDrug(MedicationUse Medication, IReadOnlyList<Ingredient> Ingredients);

public sealed class Evaluator(KnowledgeBase knowledge)
{
    /// <summary>True when some new order contains an ingredient that a rule names. When none does, no rule can
    /// fire, and the service can answer without any patient data.</summary>
    public bool AnyRuleConcerns(IEnumerable<MedicationUse> newMedications) =>
        newMedications.Any(m => m.RxNormCodes.Any(code =>
            knowledge.IngredientsOf(code).Any(i => knowledge.RulesFor(i.Code).Count > 0)));

    /// <summary>One finding per rule. A rule fires only when one of its drugs is a new order: two long-standing drugs
    /// do not alert again whenever something unrelated is ordered.</summary>
    public IReadOnlyList<Finding> Evaluate(PatientContext patient)
    {
        var pairs = new Dictionary<Rule, (HashSet<MedicationUse> A, HashSet<MedicationUse> B)>();
        foreach (var ordered in patient.Medications.Where(m => m.IsNew))
        {
            foreach (var (rule, side) in RulesOf(ordered))
            {
                var partnerGroup = side == PairSide.A ? rule.DrugB : rule.DrugA;
                var partners = patient.Medications.Where(m => !ReferenceEquals(m, ordered) && Matches(m, partnerGroup)).ToList();
                if (partners.Count == 0) continue;

                if (!pairs.TryGetValue(rule, out var sides)) pairs[rule] = sides = ([], []);
                (side == PairSide.A ? sides.A : sides.B).Add(ordered);
                (side == PairSide.A ? sides.B : sides.A).UnionWith(partners);
            }
        }

        return [.. pairs.Select(p => Weigh(p.Key, patient, p.Value.A, p.Value.B))
            .OrderByDescending(f => f.Indicator)
            .ThenBy(f => f.Rule.Id, StringComparer.Ordinal)];
    }

    private static Finding Weigh(Rule rule, PatientContext patient, HashSet<MedicationUse> a, HashSet<MedicationUse> b)
    {
        var factors = rule.Factors.Where(f => f.AgeAtLeast is { } min && patient.Age >= min).ToList();
        var indicator = factors.Select(f => f.Indicator ?? rule.Indicator).Append(rule.Indicator).Max();
        return new Finding(rule, Match(a, rule.DrugA), Match(b, rule.DrugB), factors, patient.Age, indicator);
    }

    private static List<MatchedDrug> Match(IEnumerable<MedicationUse> medications, DrugGroup group) =>
        [.. medications
            .OrderByDescending(m => m.IsNew)
            .Select(m => new MatchedDrug(m, [.. m.RxNormCodes.SelectMany(group.Resolve).DistinctBy(i => i.Code)]))];

    private IEnumerable<(Rule Rule, PairSide Side)> RulesOf(MedicationUse medication) =>
        medication.RxNormCodes
            .SelectMany(knowledge.IngredientsOf)
            .DistinctBy(i => i.Code)
            .SelectMany(i => knowledge.RulesFor(i.Code))
            .Distinct();

    private static bool Matches(MedicationUse medication, DrugGroup group) =>
        medication.RxNormCodes.Any(code => group.Resolve(code).Count > 0);
}
