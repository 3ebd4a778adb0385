using CdsHooks.Engine.Fhir;

namespace CdsHooks.Engine.Patients;

/// <summary>Daily dose from FHIR <c>dosageInstruction</c>: dose quantity (or the high end of a range) times the
/// administrations per day from <c>timing.repeat</c> (frequency, or frequencyMax when given, per period and unit),
/// summed over instructions. An as-needed instruction with <c>maxDosePerPeriod</c> counts at that maximum. Null
/// when the instructions do not say enough, or mix units.</summary>
public static class Dosing
{
    public static DailyDose? DailyDose(IReadOnlyList<DosageRecord> instructions)
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

    private static DailyDose? Sum(IReadOnlyList<DosageRecord> instructions)
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

    private static (decimal? Amount, string? Unit) PerDay(DosageRecord dosage)
    {
        if (dosage.AsNeeded && dosage.MaxDosePerPeriod is { } max)
        {
            return Positive(max.Numerator?.Value) is { } most ? (most * PerDayFactor(max.Denominator), UnitOf(max.Numerator)) : (null, null);
        }

        // The first dose given: a quantity, or the high end of a range.
        QuantityRecord? dose = null;
        for (var i = 0; i < dosage.Doses.Length && dose is null; i++) dose = dosage.Doses[i].Quantity;

        var repeat = dosage.Repeat;
        if (Positive(dose?.Value) is not { } amount || repeat is null) return (null, null);

        // A zero or negative frequency or period is not a schedule: no dose rather than a division by zero.
        if (Positive(repeat.FrequencyMax ?? repeat.Frequency ?? 1) is not { } times || Positive(repeat.Period ?? 1) is not { } period)
        {
            return (null, null);
        }

        // The code as sent: a code outside UnitsOfTime ("fortnight") says no more than an absent unit does.
        decimal? perDay = repeat.PeriodUnit switch
        {
            "h" => times * 24 / period,
            "min" => times * 24 * 60 / period,
            "d" => times / period,
            "wk" => times / (7 * period),
            "mo" => times / (30 * period),
            // "at bedtime": once per named time of day (a null in the array names none)
            null when repeat.NamedTimes > 0 => repeat.NamedTimes,
            _ => null,
        };
        return (amount * perDay, UnitOf(dose));
    }

    private static decimal? Positive(decimal? value) => value > 0 ? value : null;

    private static string? UnitOf(QuantityRecord? q) => q?.Code ?? q?.Unit;

    private static decimal? PerDayFactor(QuantityRecord? period) => (Positive(period?.Value), period?.Code ?? period?.Unit) switch
    {
        ({ } v, "d" or "day" or "days") => 1 / v,
        ({ } v, "h" or "hour" or "hours") => 24 / v,
        ({ } v, "wk" or "week" or "weeks") => 1 / (7 * v),
        _ => null,
    };
}
