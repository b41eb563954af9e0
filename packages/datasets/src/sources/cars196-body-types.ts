/**
 * Cars196 coarse labels: the 8 body types of the MaskCon supplementary (Table 2) for each of
 * the 196 Stanford Cars classes, in the devkit's class order (`cars_meta.mat` `class_names`,
 * class id = row + 1).
 *
 * How each class got its body type:
 * 1. The body word in the name, read from the right: Sedan, SUV, Convertible, Coupe,
 *    Hatchback, Wagon, Van / Minivan (→ Van), Cab / SuperCab (Crew, Regular, Extended, Club,
 *    Quad Cab → Cab). "Rolls-Royce Phantom Drophead Coupe Convertible" is a Convertible,
 *    "Infiniti G Coupe IPL" a Coupe.
 * 2. Fourteen names carry no body word. They follow the grouping the paper's authors released
 *    with their code (MrChenFeng/MaskCon_CVPR2023, `datasets/cars196.py`):
 *      Sedan       Acura TL Type-S 2008, Buick Regal GS 2012, Chrysler 300 SRT-8 2010,
 *                  Dodge Charger SRT-8 2009
 *      SUV         Chevrolet HHR SS 2010, Chevrolet TrailBlazer SS 2009
 *      Convertible Chevrolet Corvette ZR1 2012, Chevrolet Corvette Ron Fellows Edition Z06 2007,
 *                  Jaguar XK XKR 2012, Lamborghini Gallardo LP 570-4 Superleggera 2012
 *      Coupe       Acura Integra Type R 2001, Chevrolet Cobalt SS 2010, Dodge Challenger SRT8 2011
 *      Hatchback   FIAT 500 Abarth 2012
 *    (Several of these are hardtops in reality — a Corvette ZR1 is a coupe — but only this
 *    assignment reproduces Table 2 together with rule 1, and it is the one the paper used.)
 * 3. "Ford E-Series Wagon Van 2012" names two body types. The authors' released table puts it
 *    in Van, which gives Wagon 6 / Van 13 and contradicts their own Table 2 (Wagon 7 / Van 12);
 *    we follow Table 2 and make it a Wagon (Ford sells it as the "E-Series Wagon", the
 *    passenger version of the E-Series van).
 * Result: Cab 18, Sedan 50, SUV 36, Convertible 30, Coupe 29, Hatchback 14, Wagon 7, Van 12.
 */

export const CARS196_BODY_TYPES = [
  'Cab',
  'Sedan',
  'SUV',
  'Convertible',
  'Coupe',
  'Hatchback',
  'Wagon',
  'Van',
] as const;

export type Cars196BodyType = (typeof CARS196_BODY_TYPES)[number];

/** Fine classes per body type in the MaskCon supplementary, Table 2. */
export const CARS196_TABLE2_FINE_PER_COARSE: readonly number[] = [18, 50, 36, 30, 29, 14, 7, 12];

const CAB = 0;
const SEDAN = 1;
const SUV = 2;
const CONVERTIBLE = 3;
const COUPE = 4;
const HATCHBACK = 5;
const WAGON = 6;
const VAN = 7;

/** [class name as in cars_meta.mat, body type id], in class-id order (row i = class i + 1). */
export const CARS196_CLASSES: readonly (readonly [string, number])[] = [
  ['AM General Hummer SUV 2000', SUV],
  ['Acura RL Sedan 2012', SEDAN],
  ['Acura TL Sedan 2012', SEDAN],
  ['Acura TL Type-S 2008', SEDAN],
  ['Acura TSX Sedan 2012', SEDAN],
  ['Acura Integra Type R 2001', COUPE],
  ['Acura ZDX Hatchback 2012', HATCHBACK],
  ['Aston Martin V8 Vantage Convertible 2012', CONVERTIBLE],
  ['Aston Martin V8 Vantage Coupe 2012', COUPE],
  ['Aston Martin Virage Convertible 2012', CONVERTIBLE],
  ['Aston Martin Virage Coupe 2012', COUPE],
  ['Audi RS 4 Convertible 2008', CONVERTIBLE],
  ['Audi A5 Coupe 2012', COUPE],
  ['Audi TTS Coupe 2012', COUPE],
  ['Audi R8 Coupe 2012', COUPE],
  ['Audi V8 Sedan 1994', SEDAN],
  ['Audi 100 Sedan 1994', SEDAN],
  ['Audi 100 Wagon 1994', WAGON],
  ['Audi TT Hatchback 2011', HATCHBACK],
  ['Audi S6 Sedan 2011', SEDAN],
  ['Audi S5 Convertible 2012', CONVERTIBLE],
  ['Audi S5 Coupe 2012', COUPE],
  ['Audi S4 Sedan 2012', SEDAN],
  ['Audi S4 Sedan 2007', SEDAN],
  ['Audi TT RS Coupe 2012', COUPE],
  ['BMW ActiveHybrid 5 Sedan 2012', SEDAN],
  ['BMW 1 Series Convertible 2012', CONVERTIBLE],
  ['BMW 1 Series Coupe 2012', COUPE],
  ['BMW 3 Series Sedan 2012', SEDAN],
  ['BMW 3 Series Wagon 2012', WAGON],
  ['BMW 6 Series Convertible 2007', CONVERTIBLE],
  ['BMW X5 SUV 2007', SUV],
  ['BMW X6 SUV 2012', SUV],
  ['BMW M3 Coupe 2012', COUPE],
  ['BMW M5 Sedan 2010', SEDAN],
  ['BMW M6 Convertible 2010', CONVERTIBLE],
  ['BMW X3 SUV 2012', SUV],
  ['BMW Z4 Convertible 2012', CONVERTIBLE],
  ['Bentley Continental Supersports Conv. Convertible 2012', CONVERTIBLE],
  ['Bentley Arnage Sedan 2009', SEDAN],
  ['Bentley Mulsanne Sedan 2011', SEDAN],
  ['Bentley Continental GT Coupe 2012', COUPE],
  ['Bentley Continental GT Coupe 2007', COUPE],
  ['Bentley Continental Flying Spur Sedan 2007', SEDAN],
  ['Bugatti Veyron 16.4 Convertible 2009', CONVERTIBLE],
  ['Bugatti Veyron 16.4 Coupe 2009', COUPE],
  ['Buick Regal GS 2012', SEDAN],
  ['Buick Rainier SUV 2007', SUV],
  ['Buick Verano Sedan 2012', SEDAN],
  ['Buick Enclave SUV 2012', SUV],
  ['Cadillac CTS-V Sedan 2012', SEDAN],
  ['Cadillac SRX SUV 2012', SUV],
  ['Cadillac Escalade EXT Crew Cab 2007', CAB],
  ['Chevrolet Silverado 1500 Hybrid Crew Cab 2012', CAB],
  ['Chevrolet Corvette Convertible 2012', CONVERTIBLE],
  ['Chevrolet Corvette ZR1 2012', CONVERTIBLE],
  ['Chevrolet Corvette Ron Fellows Edition Z06 2007', CONVERTIBLE],
  ['Chevrolet Traverse SUV 2012', SUV],
  ['Chevrolet Camaro Convertible 2012', CONVERTIBLE],
  ['Chevrolet HHR SS 2010', SUV],
  ['Chevrolet Impala Sedan 2007', SEDAN],
  ['Chevrolet Tahoe Hybrid SUV 2012', SUV],
  ['Chevrolet Sonic Sedan 2012', SEDAN],
  ['Chevrolet Express Cargo Van 2007', VAN],
  ['Chevrolet Avalanche Crew Cab 2012', CAB],
  ['Chevrolet Cobalt SS 2010', COUPE],
  ['Chevrolet Malibu Hybrid Sedan 2010', SEDAN],
  ['Chevrolet TrailBlazer SS 2009', SUV],
  ['Chevrolet Silverado 2500HD Regular Cab 2012', CAB],
  ['Chevrolet Silverado 1500 Classic Extended Cab 2007', CAB],
  ['Chevrolet Express Van 2007', VAN],
  ['Chevrolet Monte Carlo Coupe 2007', COUPE],
  ['Chevrolet Malibu Sedan 2007', SEDAN],
  ['Chevrolet Silverado 1500 Extended Cab 2012', CAB],
  ['Chevrolet Silverado 1500 Regular Cab 2012', CAB],
  ['Chrysler Aspen SUV 2009', SUV],
  ['Chrysler Sebring Convertible 2010', CONVERTIBLE],
  ['Chrysler Town and Country Minivan 2012', VAN],
  ['Chrysler 300 SRT-8 2010', SEDAN],
  ['Chrysler Crossfire Convertible 2008', CONVERTIBLE],
  ['Chrysler PT Cruiser Convertible 2008', CONVERTIBLE],
  ['Daewoo Nubira Wagon 2002', WAGON],
  ['Dodge Caliber Wagon 2012', WAGON],
  ['Dodge Caliber Wagon 2007', WAGON],
  ['Dodge Caravan Minivan 1997', VAN],
  ['Dodge Ram Pickup 3500 Crew Cab 2010', CAB],
  ['Dodge Ram Pickup 3500 Quad Cab 2009', CAB],
  ['Dodge Sprinter Cargo Van 2009', VAN],
  ['Dodge Journey SUV 2012', SUV],
  ['Dodge Dakota Crew Cab 2010', CAB],
  ['Dodge Dakota Club Cab 2007', CAB],
  ['Dodge Magnum Wagon 2008', WAGON],
  ['Dodge Challenger SRT8 2011', COUPE],
  ['Dodge Durango SUV 2012', SUV],
  ['Dodge Durango SUV 2007', SUV],
  ['Dodge Charger Sedan 2012', SEDAN],
  ['Dodge Charger SRT-8 2009', SEDAN],
  ['Eagle Talon Hatchback 1998', HATCHBACK],
  ['FIAT 500 Abarth 2012', HATCHBACK],
  ['FIAT 500 Convertible 2012', CONVERTIBLE],
  ['Ferrari FF Coupe 2012', COUPE],
  ['Ferrari California Convertible 2012', CONVERTIBLE],
  ['Ferrari 458 Italia Convertible 2012', CONVERTIBLE],
  ['Ferrari 458 Italia Coupe 2012', COUPE],
  ['Fisker Karma Sedan 2012', SEDAN],
  ['Ford F-450 Super Duty Crew Cab 2012', CAB],
  ['Ford Mustang Convertible 2007', CONVERTIBLE],
  ['Ford Freestar Minivan 2007', VAN],
  ['Ford Expedition EL SUV 2009', SUV],
  ['Ford Edge SUV 2012', SUV],
  ['Ford Ranger SuperCab 2011', CAB],
  ['Ford GT Coupe 2006', COUPE],
  ['Ford F-150 Regular Cab 2012', CAB],
  ['Ford F-150 Regular Cab 2007', CAB],
  ['Ford Focus Sedan 2007', SEDAN],
  ['Ford E-Series Wagon Van 2012', WAGON],
  ['Ford Fiesta Sedan 2012', SEDAN],
  ['GMC Terrain SUV 2012', SUV],
  ['GMC Savana Van 2012', VAN],
  ['GMC Yukon Hybrid SUV 2012', SUV],
  ['GMC Acadia SUV 2012', SUV],
  ['GMC Canyon Extended Cab 2012', CAB],
  ['Geo Metro Convertible 1993', CONVERTIBLE],
  ['HUMMER H3T Crew Cab 2010', CAB],
  ['HUMMER H2 SUT Crew Cab 2009', CAB],
  ['Honda Odyssey Minivan 2012', VAN],
  ['Honda Odyssey Minivan 2007', VAN],
  ['Honda Accord Coupe 2012', COUPE],
  ['Honda Accord Sedan 2012', SEDAN],
  ['Hyundai Veloster Hatchback 2012', HATCHBACK],
  ['Hyundai Santa Fe SUV 2012', SUV],
  ['Hyundai Tucson SUV 2012', SUV],
  ['Hyundai Veracruz SUV 2012', SUV],
  ['Hyundai Sonata Hybrid Sedan 2012', SEDAN],
  ['Hyundai Elantra Sedan 2007', SEDAN],
  ['Hyundai Accent Sedan 2012', SEDAN],
  ['Hyundai Genesis Sedan 2012', SEDAN],
  ['Hyundai Sonata Sedan 2012', SEDAN],
  ['Hyundai Elantra Touring Hatchback 2012', HATCHBACK],
  ['Hyundai Azera Sedan 2012', SEDAN],
  ['Infiniti G Coupe IPL 2012', COUPE],
  ['Infiniti QX56 SUV 2011', SUV],
  ['Isuzu Ascender SUV 2008', SUV],
  ['Jaguar XK XKR 2012', CONVERTIBLE],
  ['Jeep Patriot SUV 2012', SUV],
  ['Jeep Wrangler SUV 2012', SUV],
  ['Jeep Liberty SUV 2012', SUV],
  ['Jeep Grand Cherokee SUV 2012', SUV],
  ['Jeep Compass SUV 2012', SUV],
  ['Lamborghini Reventon Coupe 2008', COUPE],
  ['Lamborghini Aventador Coupe 2012', COUPE],
  ['Lamborghini Gallardo LP 570-4 Superleggera 2012', CONVERTIBLE],
  ['Lamborghini Diablo Coupe 2001', COUPE],
  ['Land Rover Range Rover SUV 2012', SUV],
  ['Land Rover LR2 SUV 2012', SUV],
  ['Lincoln Town Car Sedan 2011', SEDAN],
  ['MINI Cooper Roadster Convertible 2012', CONVERTIBLE],
  ['Maybach Landaulet Convertible 2012', CONVERTIBLE],
  ['Mazda Tribute SUV 2011', SUV],
  ['McLaren MP4-12C Coupe 2012', COUPE],
  ['Mercedes-Benz 300-Class Convertible 1993', CONVERTIBLE],
  ['Mercedes-Benz C-Class Sedan 2012', SEDAN],
  ['Mercedes-Benz SL-Class Coupe 2009', COUPE],
  ['Mercedes-Benz E-Class Sedan 2012', SEDAN],
  ['Mercedes-Benz S-Class Sedan 2012', SEDAN],
  ['Mercedes-Benz Sprinter Van 2012', VAN],
  ['Mitsubishi Lancer Sedan 2012', SEDAN],
  ['Nissan Leaf Hatchback 2012', HATCHBACK],
  ['Nissan NV Passenger Van 2012', VAN],
  ['Nissan Juke Hatchback 2012', HATCHBACK],
  ['Nissan 240SX Coupe 1998', COUPE],
  ['Plymouth Neon Coupe 1999', COUPE],
  ['Porsche Panamera Sedan 2012', SEDAN],
  ['Ram C/V Cargo Van Minivan 2012', VAN],
  ['Rolls-Royce Phantom Drophead Coupe Convertible 2012', CONVERTIBLE],
  ['Rolls-Royce Ghost Sedan 2012', SEDAN],
  ['Rolls-Royce Phantom Sedan 2012', SEDAN],
  ['Scion xD Hatchback 2012', HATCHBACK],
  ['Spyker C8 Convertible 2009', CONVERTIBLE],
  ['Spyker C8 Coupe 2009', COUPE],
  ['Suzuki Aerio Sedan 2007', SEDAN],
  ['Suzuki Kizashi Sedan 2012', SEDAN],
  ['Suzuki SX4 Hatchback 2012', HATCHBACK],
  ['Suzuki SX4 Sedan 2012', SEDAN],
  ['Tesla Model S Sedan 2012', SEDAN],
  ['Toyota Sequoia SUV 2012', SUV],
  ['Toyota Camry Sedan 2012', SEDAN],
  ['Toyota Corolla Sedan 2012', SEDAN],
  ['Toyota 4Runner SUV 2012', SUV],
  ['Volkswagen Golf Hatchback 2012', HATCHBACK],
  ['Volkswagen Golf Hatchback 1991', HATCHBACK],
  ['Volkswagen Beetle Hatchback 2012', HATCHBACK],
  ['Volvo C30 Hatchback 2012', HATCHBACK],
  ['Volvo 240 Sedan 1993', SEDAN],
  ['Volvo XC90 SUV 2007', SUV],
  ['smart fortwo Convertible 2012', CONVERTIBLE],
];

/** The 196 class names in devkit order. */
export const CARS196_CLASS_NAMES: readonly string[] = CARS196_CLASSES.map(([name]) => name);

const BODY_TYPE_OF_NAME = new Map<string, number>(
  CARS196_CLASSES.map(([name, body]) => [normaliseCarName(name), body]),
);

/** Names are compared after trimming and collapsing whitespace (the MAT char arrays are space padded). */
export function normaliseCarName(name: string): string {
  return name.trim().replace(/\s+/g, ' ');
}

/** Body type id of a Stanford Cars class name, or undefined if the name is not one of the 196. */
export function cars196BodyTypeOf(name: string): number | undefined {
  return BODY_TYPE_OF_NAME.get(normaliseCarName(name));
}
