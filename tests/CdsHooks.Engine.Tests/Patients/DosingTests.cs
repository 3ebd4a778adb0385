using CdsHooks.Engine.Fhir;
using CdsHooks.Engine.Patients;
using Hl7.Fhir.Model;

namespace CdsHooks.Engine.Tests.Patients;

public class DosingTests
{
    // Dosages are written with Firely and read as the engine reads them, as a whole parse is (FhirRecord.From).
    private static DailyDose? DailyDose(IEnumerable<Dosage> dosages) => Dosing.DailyDose(FhirRecord.DosagesOf(dosages));

    private static Dosage Dose(decimal value, string unit, int frequency = 1, decimal period = 1,
        Timing.UnitsOfTime periodUnit = Timing.UnitsOfTime.D) => new()
        {
            DoseAndRate = [new Dosage.DoseAndRateComponent { Dose = new Quantity(value, unit) }],
            Timing = new Timing { Repeat = new Timing.RepeatComponent { Frequency = frequency, Period = period, PeriodUnit = periodUnit } },
        };

    [Fact]
    public void TwiceDailyDoseIsDoubled() =>
        Assert.Equal(new DailyDose(1m, "mg"), DailyDose([Dose(0.5m, "mg", frequency: 2)]));

    [Fact]
    public void EveryEightHoursIsThreeTimesADay() =>
        Assert.Equal(new DailyDose(3m, "mg"), DailyDose([Dose(1m, "mg", period: 8, periodUnit: Timing.UnitsOfTime.H)]));

    [Fact]
    public void APeriodUnitOutsideUnitsOfTimeMeansNoDailyDose()
    {
        // Firely's typed PeriodUnit throws on such a code; the EHR's text says no more than an absent unit.
        var dosage = Dose(1m, "mg");
        dosage.Timing!.Repeat!.PeriodUnitElement = new() { JsonValue = "fortnight" };

        Assert.Null(DailyDose([dosage]));
    }

    [Fact]
    public void SplitInstructionsAreSummed() =>
        Assert.Equal(new DailyDose(1.5m, "mg"), DailyDose([Dose(0.5m, "mg"), Dose(1m, "mg")]));

    [Fact]
    public void RangeCountsAtItsHighEnd()
    {
        var dosage = Dose(1m, "mg");
        dosage.DoseAndRate[0].Dose = new Hl7.Fhir.Model.Range { Low = new Quantity(15, "mg"), High = new Quantity(30, "mg") };

        Assert.Equal(new DailyDose(30m, "mg"), DailyDose([dosage]));
    }

    [Fact]
    public void AsNeededCountsAtItsMaximumPerPeriod()
    {
        var dosage = Dose(0.5m, "mg");
        dosage.AsNeeded = new FhirBoolean(true);
        dosage.MaxDosePerPeriod = new Ratio(new Quantity(2, "mg"), new Quantity(1, "d"));

        Assert.Equal(new DailyDose(2m, "mg"), DailyDose([dosage]));
    }

    [Fact]
    public void AtBedtimeWithoutAFrequencyIsOncePerNamedTime()
    {
        var dosage = new Dosage
        {
            DoseAndRate = [new Dosage.DoseAndRateComponent { Dose = new Quantity(15, "mg") }],
            Timing = new Timing { Repeat = new Timing.RepeatComponent { When = [Timing.EventTiming.HS] } },
        };

        Assert.Equal(new DailyDose(15m, "mg"), DailyDose([dosage]));
    }

    [Fact]
    public void MixedUnitsOrMissingTimingGiveNoDose()
    {
        Assert.Null(DailyDose([Dose(0.5m, "mg"), Dose(1m, "tablet")]));
        Assert.Null(DailyDose([new Dosage { DoseAndRate = [new Dosage.DoseAndRateComponent { Dose = new Quantity(1, "mg") }] }]));
        Assert.Null(DailyDose([]));
    }

    [Theory]
    [InlineData(1, "mg", 1, 0)]       // a zero period
    [InlineData(1, "mg", 0, 1)]       // a zero frequency
    [InlineData(-15, "mg", 1, 1)]     // a negative dose
    [InlineData(1, "mg", 1, -2)]      // a negative period
    [InlineData(0, "mg", 1, 1)]       // a zero dose
    public void ImpossibleSchedulesGiveNoDose(decimal value, string unit, int frequency, decimal period) =>
        Assert.Null(DailyDose([Dose(value, unit, frequency, period)]));

    [Fact]
    public void DosesBeyondAnyRealNumberGiveNoDoseRatherThanAnOverflow()
    {
        Assert.Null(DailyDose([Dose(7e27m, "mg", frequency: 20)]));
        Assert.Null(DailyDose([Dose(1m, "mg", period: 1e-28m, periodUnit: Timing.UnitsOfTime.H)]));
        Assert.Null(DailyDose([Dose(5e28m, "mg"), Dose(5e28m, "mg")]));
    }
}
