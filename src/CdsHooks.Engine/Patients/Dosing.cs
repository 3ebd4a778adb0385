using Hl7.Fhir.Model;

namespace CdsHooks.Engine.Patients;

/// <summary>Daily dose from FHIR <c>dosageInstruction</c>: dose quantity (or the high end of a range) times the
/// administrations per day from <c>timing.repeat</c> (frequency, or frequencyMax when given, per period and unit),
/// summed over instructions. An as-needed instruction with <c>maxDosePerPeriod</c> counts at that maximum. Null
/// when the instructions do not say enough, or mix units.</summary>
public static class Dosing
{
    public static DailyDose? DailyDose(IReadOnlyList<Dosage> instructions)
    {
        try
        {
            return Sum(instructions);
        }
        catch (OverflowException)
        {
            return null; // no real dose overflows a decimal: such a dosage says nothing usable
        }
    }

    private static DailyDose? Sum(IReadOnlyList<Dosage> instructions)
    {
        decimal total = 0;
        string? unit = null;
        for (var i = 0; i < instructions.Count; i++)
        {
            var (amount, doseUnit) = PerDay(instructions[i]);
            if (amount is null || doseUnit is null) return null;
            if (unit is not null && !string.Equals(unit, doseUnit, StringComparison.OrdinalIgnoreCase)) return null;
            unit = doseUnit;
            total += amount.Value;
        }

        return unit is null ? null : new DailyDose(total, unit);
    }

    private static (decimal? Amount, string? Unit) PerDay(Dosage dosage)
    {
        if (dosage.AsNeeded is FhirBoolean { Value: true } or CodeableConcept && dosage.MaxDosePerPeriod is { } max)
        {
            return Positive(max.Numerator?.Value) is { } most ? (most * PerDayFactor(max.Denominator), UnitOf(max.Numerator)) : (null, null);
        }

        // The first dose given: a quantity, or the high end of a range.
        Quantity? dose = null;
        for (var i = 0; i < dosage.DoseAndRate.Count && dose is null; i++)
        {
            dose = dosage.DoseAndRate[i]?.Dose switch
            {
                Quantity q => q,
                Hl7.Fhir.Model.Range r => r.High,
                _ => null,
            };
        }

        var repeat = dosage.Timing?.Repeat;
        if (Positive(dose?.Value) is not { } amount || repeat is null) return (null, null);

        // A zero or negative frequency or period is not a schedule: no dose rather than a division by zero.
        if (Positive(repeat.FrequencyMax ?? repeat.Frequency ?? 1) is not { } times || Positive(repeat.Period ?? 1) is not { } period)
        {
            return (null, null);
        }

        // The code as sent: Firely's typed PeriodUnit throws on a code outside UnitsOfTime ("fortnight"), which
        // says no more than an absent unit does.
        decimal? perDay = (repeat.PeriodUnitElement?.JsonValue as string) switch
        {
            "h" => times * 24 / period,
            "min" => times * 24 * 60 / period,
            "d" => times / period,
            "wk" => times / (7 * period),
            "mo" => times / (30 * period),
            // "at bedtime": once per named time of day (a null in the array names none)
            null when NamedTimes(repeat.WhenElement) is > 0 and var named => named,
            _ => null,
        };
        return (amount * perDay, UnitOf(dose));
    }

    private static int NamedTimes(List<Code<Timing.EventTiming>> when)
    {
        var named = 0;
        for (var i = 0; i < when.Count; i++)
        {
            if (when[i]?.JsonValue is not null) named++;
        }

        return named;
    }

    private static decimal? Positive(decimal? value) => value > 0 ? value : null;

    private static string? UnitOf(Quantity? q) => q?.Code ?? q?.Unit;

    private static decimal? PerDayFactor(Quantity? period) => (Positive(period?.Value), period?.Code ?? period?.Unit) switch
    {
        ({ } v, "d" or "day" or "days") => 1 / v,
        ({ } v, "h" or "hour" or "hours") => 24 / v,
        ({ } v, "wk" or "week" or "weeks") => 1 / (7 * v),
        _ => null,
    };
}
